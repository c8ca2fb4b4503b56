"""maxpool2d: one thread per output value finds its window's maximum and, in training, where
it is in the input plane. Padding cells count as -inf, as in the reference: the first tap
in row-major order wins ties, a NaN beats everything (the first NaN), and a window whose
winner is a padding cell (every real value -inf) records -1. The backward zeroes the
input's gradient and adds each output's gradient at its arg-max with an atomic add
(windows may overlap, and which of them wins depends on the values)."""
from __future__ import annotations

from ...cpu.lower._common import pool_geometry
from . import Call, Extern, launcher, lowers
from ._window import split


def _window_max(kh, kw, sh, sw, pt, pl) -> list:
    return [f"    r, s = r0 * {sh} - {pt}, j * {sw} - {pl}",
            "    best = _f(-math.inf)", "    at = -1", "    first = True",
            f"    for u in range({kh}):", f"        for v in range({kw}):",
            "            h, w = r + u, s + v",
            "            inside = 0 <= h < x.shape[2] and 0 <= w < x.shape[3]",
            "            a = x[n, c, h, w] if inside else _f(-math.inf)",
            "            if first or a > best or (a != a and best == best):",
            "                best = a", "                at = h * x.shape[3] + w if inside else -1",
            "            first = False"]


def window_max(site, x: str, y: str, arg: str, geometry, doc: str, how: str = ""):
    """The forward kernel of pooling node site.group.anchor: y and arg from x (buffer
    expressions, NCHW), for the window (kh, kw, sh, sw, pt, pl); maxpool1d passes its
    (N, C, 1, L) views, `how` saying so."""
    kh, kw, sh, sw, pt, pl = geometry
    body = split("y") + _window_max(kh, kw, sh, sw, pt, pl) + [
        "    y[n, c, r0, j] = best", "    arg[n, c, r0, j] = at"]
    name = f"k_{site.group.name}"
    return Extern([Call(name, [x, y, arg], how)],
                  {name: launcher(name, ["x", "y", "arg"], body, "y.size", doc)})


def scatter_max(site, gy: str, arg: str, gx: str):
    """The backward kernels of a pooling group: gx zeroed, then each value of gy added at its
    arg-max (NCHW buffer expressions)."""
    zero, scatter = f"k_{site.group.name}_zero", f"k_{site.group.name}_scatter"
    scatter_body = split("gy") + [
        "    at = arg[n, c, r0, j]", "    if at >= 0:",
        "        cuda.atomic.add(gx, (n, c, at // gx.shape[3], at % gx.shape[3]),"
        " gy[n, c, r0, j])"]
    return Extern(
        [Call(zero, [gx]), Call(scatter, [gy, arg, gx])],
        {zero: launcher(zero, ["gx"], split("gx") + ["    gx[n, c, r0, j] = 0"], "gx.size",
                        "the input's gradient set to 0"),
         scatter: launcher(scatter, ["gy", "arg", "gx"], scatter_body, "gy.size",
                           "each output's gradient added at its arg-max")})


@lowers("maxpool2d", kind="forward")
def maxpool2d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    kh, kw, sh, sw, pt, _, pl, _ = pool_geometry(site, n)
    arg = site.scratch("arg", site.shape(n), kind="int")
    pads = f", padding {pt}/{pl}" if pt or pl else ""
    doc = f"{n} (maxpool2d {kh}x{kw}, stride {sh}x{sw}{pads}), with each value's arg-max"
    return window_max(site, site.val(d.inputs[0]), site.val(n), arg,
                      (kh, kw, sh, sw, pt, pl), doc)


@lowers("maxpool2d", kind="backward")
def maxpool2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    return scatter_max(site, site.grad(n), site.scratch("arg", site.shape(n), kind="int"), gx)
