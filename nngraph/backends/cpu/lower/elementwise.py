"""Elementwise ops with scalar code (activations): one loop over the flat arrays each way."""
from __future__ import annotations

from . import Kernel, lowers


@lowers("*elementwise", kind="forward")
def elementwise_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    if d.op.scalar is None or len(d.inputs) != 1:
        return None
    body = ["xf = _flat(x)", "yf = _flat(y)",
            "for i in range(xf.size):",
            f"    yf[i] = {site.act(n, 'xf[i]')}"]
    return Kernel(["x", "y"], ["    " + b for b in body],
                       [site.val(d.inputs[0]), site.val(n)])


@lowers("*elementwise", kind="backward")
def elementwise_backward(site):
    b = site.group.nodes[0]
    n = b.of
    d = site.node(n)
    gx = site.input_grad(n, 0)
    if d.op.scalar is None or not gx:
        return None
    names = {"gy": "gyf[i]", "y": "yf[i]", "x": "xf[i]"}
    body = ["    gyf = _flat(gy)", "    yf = _flat(y)", "    xf = _flat(x)",
            "    gxf = _flat(gx)", "    for i in range(gyf.size):",
            f"        gxf[i] = {site.act_grad(n, names)}"]
    return Kernel(["gy", "y", "x", "gx"], body,
                       [site.grad(n), site.val(n), site.val(d.inputs[0]), gx])
