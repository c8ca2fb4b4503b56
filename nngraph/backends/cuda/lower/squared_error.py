"""squared_error: factor * sum (x - t)^2, each value's term and (in training) its gradient in
one kernel, the terms summed on the device (kernels/cuda/reduce.py) and only the total read
back."""
from __future__ import annotations

from . import Launch, lowers
from ._losses import gradient_target


@lowers("squared_error", kind="loss", calls=("_reduce.total",))
def squared_error_loss(site):
    n = site.group.anchor
    d = site.node(n)
    pred, target = d.inputs
    mean = d.attrs["reduction"] == "mean"
    factor, weight = float(d.attrs["factor"]), float(d.attrs["weight"])
    into = gradient_target(site, pred)
    terms = site.scratch("terms", site.shape(pred))
    total = site.scratch("total", (1,), layout="fixed")
    per = " / x.shape[0]" if mean else ""
    args = ["x", "t", "s", "out"] + (["g"] if into else [])
    body = ["    e = x[i] - t[i]", f"    s[i] = _f({factor!r}) * e * e"]
    scalars = {}
    if into:
        body.append("    g[i] = c * e")
        scalars["c"] = f"_f({2 * factor * weight!r}{per})"
    host = [f"_reduce.total(_flat(s), out, 1.0{per})",
            "return float(out.copy_to_host()[0])"]
    call = [site.val(pred), site.val(target), terms, total] + ([into] if into else [])
    return Launch(args, body, call, returns=True, size="x.size", flat=True,
                  scalars=scalars, host=host)
