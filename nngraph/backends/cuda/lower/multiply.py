"""multiply: the elementwise product of its inputs, one thread per value; each input's
gradient is the incoming gradient times the other inputs (not y / x_j, which fails where
x_j is zero), every input's in the same launch."""
from __future__ import annotations

from . import Launch, lowers


@lowers("multiply", kind="forward")
def multiply_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    xs = [f"x{j}" for j in range(len(d.inputs))]
    return Launch(xs + ["y"], [f"    y[i] = {' * '.join(f'{x}[i]' for x in xs)}"],
                  [site.val(i) for i in d.inputs] + [site.val(n)], size="y.size", flat=True)


@lowers("multiply", kind="backward")
def multiply_backward(site):
    n = site.group.nodes[0].of
    d = site.node(n)
    k = len(d.inputs)
    targets = [(j, t) for j, t in ((j, site.input_grad(n, j)) for j in range(k)) if t]
    if not targets:
        return None
    body = [f"    gx{j}[i] = gy[i]" + "".join(f" * x{m}[i]" for m in range(k) if m != j)
            for j, _ in targets]
    return Launch(["gy"] + [f"x{j}" for j in range(k)] + [f"gx{j}" for j, _ in targets], body,
                  [site.grad(n)] + [site.val(i) for i in d.inputs] + [t for _, t in targets],
                  size="gy.size", flat=True)
