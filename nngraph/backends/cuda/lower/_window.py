"""What the CUDA window lowerings share (pooling, upsampling, the 1-D ops lifted onto the
2-D ones): a thread's place in an NCHW array, (N, C, L) buffers seen as (N, C, 1, L), and
the gather that finds the outputs whose windows cover an input value, so that a backward
writes each input gradient once (no atomics, a fixed order of the sum)."""
from __future__ import annotations

_SPLIT = ["    q = i", "    {w} = q % {a}.shape[3]", "    q //= {a}.shape[3]",
          "    {h} = q % {a}.shape[2]", "    q //= {a}.shape[2]",
          "    c = q % {a}.shape[1]", "    n = q // {a}.shape[1]"]


def split(a: str, h: str = "r0", w: str = "j") -> list:
    """Lines giving thread i's (n, c, h, w) in 4-D array `a`."""
    return [line.format(a=a, h=h, w=w) for line in _SPLIT]


def height1(buffer: str, shape) -> str:
    """Buffer `buffer` of per-sample shape (C, L) as an (N, C, 1, L) view (a reshape of a
    C-contiguous arena buffer: no copy), so that conv1d and maxpool1d run the kernels of
    conv2d and maxpool2d, as the CPU backend's lowerings do."""
    return f"{buffer}.reshape(-1, {shape[0]}, 1, {shape[1]})"


def covering(kh, kw, sh, sw, pt, pl, body: list) -> list:
    """Lines that run `body` (lines, at this depth) for each output (r, s) of gy whose
    window (kh x kw at stride sh x sw, leading pads pt, pl) covers input (h, w) at tap
    (u, v); `acc` starts at 0."""
    return ["    acc = _f(0)",
            f"    for u in range({kh}):", f"        hr = h + {pt} - u",
            f"        if hr >= 0 and hr % {sh} == 0 and hr // {sh} < gy.shape[2]:",
            f"            r = hr // {sh}",
            f"            for v in range({kw}):", f"                wr = w + {pl} - v",
            f"                if wr >= 0 and wr % {sw} == 0 and wr // {sw} < gy.shape[3]:",
            f"                    s = wr // {sw}"] + ["                    " + b for b in body]
