"""multiply: the elementwise product of its inputs; the gradient of each input is the incoming
gradient times the other inputs, multiplied in the reference's order."""
from __future__ import annotations

from . import Kernel, lowers


@lowers("multiply", kind="forward")
def multiply_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    k = len(d.inputs)
    product = " * ".join(f"x{j}f[i]" for j in range(k))
    body = [f"    x{j}f = _flat(x{j})" for j in range(k)] + [
        "    yf = _flat(y)", "    for i in range(yf.size):", f"        yf[i] = {product}"]
    return Kernel([f"x{j}" for j in range(k)] + ["y"], body,
                  [site.val(i) for i in d.inputs] + [site.val(n)])


@lowers("multiply", kind="backward")
def multiply_backward(site):
    """gx_j = gy * x_0 * ... (every input but x_j), formed directly rather than as y / x_j,
    which fails wherever x_j is zero; every input's gradient in one pass."""
    b = site.group.nodes[0]
    n = b.of
    d = site.node(n)
    k = len(d.inputs)
    targets = [(j, site.input_grad(n, j)) for j in range(k)]
    targets = [(j, t) for j, t in targets if t]
    if not targets:
        return None
    body = ["    gyf = _flat(gy)"] + [f"    x{j}f = _flat(x{j})" for j in range(k)] + \
        [f"    gx{j}f = _flat(gx{j})" for j, _ in targets] + ["    for i in range(gyf.size):"]
    for j, _ in targets:
        others = "".join(f" * x{m}f[i]" for m in range(k) if m != j)
        body.append(f"        gx{j}f[i] = gyf[i]{others}")
    return Kernel(["gy"] + [f"x{j}" for j in range(k)] + [f"gx{j}" for j, _ in targets], body,
                  [site.grad(n)] + [site.val(i) for i in d.inputs] + [t for _, t in targets])
