"""add: the sum of its inputs; its backward copies the gradient to each input."""
from __future__ import annotations

from . import Kernel, lowers


@lowers("add", kind="forward")
def add_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    k = len(d.inputs)
    args = [f"x{j}" for j in range(k)] + ["y"]
    total = " + ".join(f"x{j}f[i]" for j in range(k))
    body = [f"    x{j}f = _flat(x{j})" for j in range(k)] + [
        "    yf = _flat(y)", "    for i in range(yf.size):", f"        yf[i] = {total}"]
    return Kernel(args, body, [site.val(i) for i in d.inputs] + [site.val(n)])


@lowers("add", kind="backward")
def add_backward(site):
    b = site.group.nodes[0]
    n = b.of
    d = site.node(n)
    targets = [site.input_grad(n, j) for j in range(len(d.inputs))]
    targets = [t for t in targets if t]
    if not targets:
        return None
    args = ["g"] + [f"gx{j}" for j in range(len(targets))]
    body = ["    gf = _flat(g)"] + [f"    gx{j}f = _flat(gx{j})"
                                         for j in range(len(targets))]
    body += ["    for i in range(gf.size):"] + [f"        gx{j}f[i] = gf[i]"
                                                for j in range(len(targets))]
    return Kernel(args, body, [site.grad(n)] + targets)
