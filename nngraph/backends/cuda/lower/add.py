"""add: the sum of its inputs, one thread per value; its backward copies the gradient to
each input that takes one, in the same launch."""
from __future__ import annotations

from . import Launch, lowers


@lowers("add", kind="forward")
def add_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    xs = [f"x{j}" for j in range(len(d.inputs))]
    return Launch(xs + ["y"], [f"    y[i] = {' + '.join(f'{x}[i]' for x in xs)}"],
                  [site.val(i) for i in d.inputs] + [site.val(n)], size="y.size", flat=True)


@lowers("add", kind="backward")
def add_backward(site):
    n = site.group.nodes[0].of
    d = site.node(n)
    targets = [t for t in (site.input_grad(n, j) for j in range(len(d.inputs))) if t]
    if not targets:
        return None
    gxs = [f"gx{j}" for j in range(len(targets))]
    return Launch(["g"] + gxs, [f"    {gx}[i] = g[i]" for gx in gxs],
                  [site.grad(n)] + targets, size="g.size", flat=True)
