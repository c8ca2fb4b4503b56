"""The CUDA form of the losses summed over their prediction's elements (mean_squared_error,
mean_absolute_error, sigmoid_cross_entropy, hinge, logistic, exponential): a thread per
element computes its loss and, in training, its gradient, from the very lines the CPU
lowering runs (each loss's ELEMENT in backends/cpu/lower/); the terms are summed on the
device (kernels/cuda/reduce.py) and only the total is read back."""
from __future__ import annotations

import math

from . import Launch
from ._losses import gradient_target


def pointwise_loss(site, element: list, scale: float = 1.0, consts: tuple = ()):
    """The Launch of a loss Σ_i l(x_i, t_i) · scale per sample, then mean or sum over the
    batch: `element` sets l and d from xi, ti (the label in x's dtype), one and zero, and
    the locals of `consts` ((local, attribute, value), ...), as on the CPU."""
    d = site.node(site.group.anchor)
    pred, label = d.inputs
    into = gradient_target(site, pred)
    mean = d.attrs["reduction"] == "mean"
    weight = float(d.attrs["weight"])
    terms = site.scratch("terms", site.shape(pred))
    total = site.scratch("total", (1,), layout="fixed")
    per = f"{float(scale)!r} / x.shape[0]" if mean else repr(float(scale))
    args = ["x", "t", "s", "out"] + (["g"] if into else [])
    body = ["    xi = x[i]", "    ti = _f(t[i])", "    one, zero = _f(1.0), _f(0.0)"]
    body += [f"    {local} = _f({float(value)!r})" for local, _, value in consts]
    body += [f"    {line}" for line in element] + ["    s[i] = l"]
    scalars = {}
    if into:
        body.append("    g[i] = c * d")
        scalars["c"] = f"_f({weight!r} * {per})"
    host = [f"_reduce.total(_flat(s), out, {per})", "return float(out.copy_to_host()[0])"]
    call = [site.val(pred), site.val(label), terms, total] + ([into] if into else [])
    return Launch(args, body, call, returns=True, size="x.size", flat=True, scalars=scalars,
                  host=host)


def elements(site) -> int:
    """How many elements each sample of the loss's prediction has."""
    return math.prod(site.shape(site.node(site.group.anchor).inputs[0]))
