"""squared_error: factor * sum (x - t)^2 and, in training, its gradient, in one pass."""
from __future__ import annotations

from . import Kernel, lowers
from ._losses import gradient_target


@lowers("squared_error", kind="loss")
def squared_error_loss(site):
    n = site.group.anchor
    d = site.node(n)
    pred, target = d.inputs
    mean = d.attrs["reduction"] == "mean"
    factor = float(d.attrs["factor"])
    into = gradient_target(site, pred)
    train = into is not None
    args = ["x", "t", "g"] if train else ["x", "t"]
    body = [
        "    n = x.shape[0]",
        "    xf = _flat(x)", "    tf = _flat(t)",
        "    total = 0.0",
        f"    c = _f({2 * factor * float(d.attrs['weight'])!r}){' / n' if mean else ''}",
    ]
    if train:
        body.append("    gf = _flat(g)")
    body += ["    for i in range(xf.size):",
             "        e = xf[i] - tf[i]",
             f"        total += _f({factor!r}) * e * e"]
    if train:
        body.append("        gf[i] = c * e")
    body.append(f"    return total{' / n' if mean else ''}")
    call = [site.val(pred), site.val(target)] + ([into] if train else [])
    return Kernel(args, body, call, returns=True)
