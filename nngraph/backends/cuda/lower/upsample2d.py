"""upsample2d (nearest): one thread per output value copies its source; backward: one
thread per input value sums the gradient of the block it was copied to."""
from __future__ import annotations

from . import Call, Extern, launcher, lowers
from ._window import split


@lowers("upsample2d", kind="forward")
def upsample2d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    sh, sw = d.attrs.size
    body = split("y", "r", "s") + [f"    y[n, c, r, s] = x[n, c, r // {sh}, s // {sw}]"]
    name = f"k_{site.group.name}"
    return Extern([Call(name, [site.val(d.inputs[0]), site.val(n)])],
                  {name: launcher(name, ["x", "y"], body, "y.size",
                                  f"{n} (upsample2d {sh}x{sw}, nearest)")})


@lowers("upsample2d", kind="backward")
def upsample2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    sh, sw = site.node(n).attrs.size
    body = split("gx", "h", "w") + [
        "    acc = _f(0)", f"    for u in range({sh}):",
        f"        for v in range({sw}):", f"            acc += gy[n, c, h * {sh} + u, w * {sw} + v]",
        "    gx[n, c, h, w] = acc"]
    name = f"k_{site.group.name}"
    return Extern([Call(name, [site.grad(n), gx])],
                  {name: launcher(name, ["gy", "gx"], body, "gx.size",
                                  f"backward of {n}: each block's gradient summed")})
