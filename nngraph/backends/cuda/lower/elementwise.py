"""Elementwise ops with scalar code (activations): one thread per value each way."""
from __future__ import annotations

from . import Launch, lowers


@lowers("*elementwise", kind="forward")
def elementwise_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    if d.op.scalar is None or len(d.inputs) != 1:
        return None
    return Launch(["x", "y"], [f"    y[i] = {site.act(n, 'x[i]')}"],
                  [site.val(d.inputs[0]), site.val(n)], size="y.size", flat=True)


@lowers("*elementwise", kind="backward")
def elementwise_backward(site):
    n = site.group.nodes[0].of
    d = site.node(n)
    gx = site.input_grad(n, 0)
    if d.op.scalar is None or not gx:
        return None
    names = {"gy": "gy[i]", "y": "y[i]", "x": "x[i]"}
    return Launch(["gy", "y", "x", "gx"], [f"    gx[i] = {site.act_grad(n, names)}"],
                  [site.grad(n), site.val(n), site.val(d.inputs[0]), gx],
                  size="gy.size", flat=True)
