"""max_margin (Crammer-Singer hinge) on the device: a thread per sample finds its strongest
rival with the CPU lowering's own lines (RIVAL), writes its loss term max(0, excess) and,
in training, its gradient row (+scale at the rival, -scale at the true class where the
margin is violated, 0 elsewhere); the terms are summed on the device
(kernels/cuda/reduce.py) and only the total is read back, as for the pointwise losses
(_pointwise.py). A sample's row is short (its classes), so one thread reads all of it."""
from __future__ import annotations

from ...cpu.lower.max_margin import RIVAL
from . import Launch, lowers
from ._losses import gradient_target


@lowers("max_margin", kind="loss", calls=("_reduce.total",))
def max_margin_loss(site):
    d = site.node(site.group.anchor)
    scores, label = d.inputs
    into = gradient_target(site, scores)
    per = "1.0 / x.shape[0]" if d.attrs["reduction"] == "mean" else "1.0"
    terms = site.scratch("terms", ())
    total = site.scratch("total", (1,), layout="fixed")
    args = ["x", "t", "terms", "out"] + (["g"] if into else [])
    body = ["    k = x.shape[1]", f"    m = _f({float(d.attrs['margin'])!r})"]
    body += [f"    {line}" for line in RIVAL]
    if into:
        body += ["    for j in range(k):", "        g[i, j] = _f(0.0)"]
    body += ["    if excess > _f(0.0):", "        terms[i] = excess"]
    if into:
        body += ["        g[i, rival] += scale", "        g[i, c] -= scale"]
    body += ["    else:", "        terms[i] = _f(0.0)"]
    scalars = {"scale": f"_f({float(d.attrs['weight'])!r} * {per})"} if into else {}
    host = [f"_reduce.total(terms, out, {per})", "return float(out.copy_to_host()[0])"]
    call = [site.val(scores), site.val(label), terms, total] + ([into] if into else [])
    return Launch(args, body, call, returns=True, size="x.shape[0]", scalars=scalars,
                  host=host)
