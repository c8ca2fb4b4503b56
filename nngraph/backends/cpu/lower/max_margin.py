"""max_margin (Crammer-Singer hinge) on class scores: per sample the strongest rival class,
max(0, x_k + m - x_c) and, where the margin is violated, +1 at the rival and -1 at the true
class, in one pass over the scores. Weight, reduction and margin are arguments."""
from __future__ import annotations

from . import Kernel, lowers
from ._losses import gradient_target

RIVAL = ["c = int(t[i])",
         "best, rival = _f(-math.inf), 0",
         "for j in range(k):",
         "    r = x[i, j] + m",
         "    if j != c and r > best:",
         "        best, rival = r, j",
         "excess = best - x[i, c]"]
"""Sample i's true class c, its strongest rival (the first of equal rivals, as numpy's
argmax, compared as x_j + m so that they round alike) and the excess max_j(x_j + m) - x_c,
from scores x (k classes), labels t and the margin m; the CUDA lowering runs the same
lines."""


@lowers("max_margin", kind="loss")
def max_margin_loss(site):
    d = site.node(site.group.anchor)
    scores, label = d.inputs
    into = gradient_target(site, scores)
    train = into is not None
    args = ["x", "t"] + (["g"] if train else []) + ["weight", "mean", "margin"]
    body = [
        "    n, k = x.shape",
        "    per = 1.0 / n if mean else 1.0",
        "    s = _f(weight * per)",
        "    m = _f(margin)",
        "    total = 0.0",
        "    for i in range(n):",
    ] + [f"        {line}" for line in RIVAL]
    if train:
        body += ["        for j in range(k):",
                 "            g[i, j] = _f(0.0)"]
    body.append("        if excess > _f(0.0):")
    body.append("            total += excess")
    if train:
        body += ["            g[i, rival] += s",
                 "            g[i, c] -= s"]
    body.append("    return total * per")
    call = [site.val(scores), site.val(label)] + ([into] if train else []) + \
        [repr(float(d.attrs["weight"])), str(d.attrs["reduction"] == "mean"),
         repr(float(d.attrs["margin"]))]
    return Kernel(args, body, call, returns=True)
