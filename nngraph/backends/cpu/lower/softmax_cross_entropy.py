"""softmax_cross_entropy on class indices: the loss and, in training, d loss / d logits in one
pass over the logits."""
from __future__ import annotations

from . import Kernel, lowers
from ._losses import gradient_target


@lowers("softmax_cross_entropy", kind="loss")
def softmax_xent_loss(site):
    """Loss and (in training) d loss / d logits in one pass over the logits."""
    n = site.group.anchor
    d = site.node(n)
    logits, label = d["inputs"]
    if len(site.shape(logits)) != 1 or site.node(label)["dtype"] not in ("int64", "int32"):
        return None
    mean = d["attrs"]["reduction"] == "mean"
    into = gradient_target(site, logits)
    train = into is not None
    args = ["x", "t", "g"] if train else ["x", "t"]
    body = [
        "    n, k = x.shape",
        "    total = 0.0",
        # the gradient carries the loss's weight: d(w·loss)/dx
        f"    scale = _f({float(d['attrs']['weight'])!r}){' / n' if mean else ''}",
        "    for i in range(n):",
        "        m = x[i, 0]",
        "        for j in range(1, k):",
        "            m = x[i, j] if x[i, j] > m else m",   # (builtin max: a function to compile)
        "        s = _f(0.0)",
        "        for j in range(k):",
        "            s += math.exp(x[i, j] - m)",
        "        lse = m + math.log(s)",
        "        total += lse - x[i, t[i]]",
    ]
    if train:
        body += [
            "        inv = _f(1.0) / s",
            "        for j in range(k):",
            "            g[i, j] = math.exp(x[i, j] - m) * inv * scale",
            "        g[i, t[i]] -= scale",
        ]
    body += [f"    return total{' / n' if mean else ''}"]
    call = [site.val(logits), site.val(label)] + ([into] if train else [])
    return Kernel(args, body, call, returns=True)
