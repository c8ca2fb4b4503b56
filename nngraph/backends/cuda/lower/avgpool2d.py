"""avgpool2d: one thread per output value averages its window, padding counting as zeros
(the window's full area divides, as in the reference); backward: one thread per input
value gathers gy / area from the windows that cover it."""
from __future__ import annotations

from ...cpu.lower._common import pool_geometry
from ...cpu.lower.avgpool2d import excludes_pad
from . import Call, Extern, launcher, lowers
from ._window import covering, split


@lowers("avgpool2d", kind="forward")
def avgpool2d_forward(site):
    n = site.group.anchor
    if excludes_pad(site, n):
        return None
    d = site.node(n)
    kh, kw, sh, sw, pt, _, pl, _ = pool_geometry(site, n)
    body = split("y") + [
        f"    r, s = r0 * {sh} - {pt}, j * {sw} - {pl}", "    acc = _f(0)",
        f"    for u in range({kh}):", f"        for v in range({kw}):",
        "            if 0 <= r + u < x.shape[2] and 0 <= s + v < x.shape[3]:",
        "                acc += x[n, c, r + u, s + v]",
        f"    y[n, c, r0, j] = acc / {kh * kw}"]
    name = f"k_{site.group.name}"
    doc = f"{n} (avgpool2d {kh}x{kw}, stride {sh}x{sw})"
    return Extern([Call(name, [site.val(d.inputs[0]), site.val(n)])],
                  {name: launcher(name, ["x", "y"], body, "y.size", doc)})


@lowers("avgpool2d", kind="backward")
def avgpool2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx or excludes_pad(site, n):
        return None
    kh, kw, sh, sw, pt, _, pl, _ = pool_geometry(site, n)
    body = split("gx", "h", "w") + covering(kh, kw, sh, sw, pt, pl, ["acc += gy[n, c, r, s]"]) \
        + [f"    gx[n, c, h, w] = acc / {kh * kw}"]
    name = f"k_{site.group.name}"
    return Extern([Call(name, [site.grad(n), gx])],
                  {name: launcher(name, ["gy", "gx"], body, "gx.size",
                                  f"backward of {n}: each input's share of its windows")})
