"""global_avgpool2d: one thread per (sample, channel) averages the plane; backward: one
thread per input value takes its share, gy / (H*W)."""
from __future__ import annotations

from . import Call, Extern, launcher, lowers
from ._window import split


@lowers("global_avgpool2d", kind="forward")
def global_avgpool2d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    body = ["    c = i % y.shape[1]", "    n = i // y.shape[1]", "    acc = _f(0)",
            "    for h in range(x.shape[2]):", "        for w in range(x.shape[3]):",
            "            acc += x[n, c, h, w]",
            "    y[n, c] = acc / (x.shape[2] * x.shape[3])"]
    name = f"k_{site.group.name}"
    return Extern([Call(name, [site.val(d.inputs[0]), site.val(n)])],
                  {name: launcher(name, ["x", "y"], body, "y.size",
                                  f"{n}: each channel's mean")})


@lowers("global_avgpool2d", kind="backward")
def global_avgpool2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    body = split("gx", "h", "w") + ["    gx[n, c, h, w] = gy[n, c] / (gx.shape[2] * gx.shape[3])"]
    name = f"k_{site.group.name}"
    return Extern([Call(name, [site.grad(n), gx])],
                  {name: launcher(name, ["gy", "gx"], body, "gx.size",
                                  f"backward of {n}: the mean's gradient spread evenly")})
