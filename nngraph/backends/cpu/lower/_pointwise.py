"""What the losses summed over their prediction's elements share (mean_squared_error,
mean_absolute_error, sigmoid_cross_entropy, hinge, logistic, exponential): one loop over
prediction and labels that adds up the loss and, in training, writes the gradient.

The loss's weight, its reduction and its other constants are arguments of the kernel, not
literals in it: two losses of one kind, whatever their weights, reductions, margins or
widths, share one compiled kernel.
"""
from __future__ import annotations

import math

from . import Kernel
from ._losses import gradient_target


def pointwise_loss(site, element: list, scale: float = 1.0, consts: tuple = ()):
    """The Kernel of a loss Σ_i l(x_i, t_i) · scale per sample, then mean or sum over the
    batch, whose labels t have the prediction x's shape.

    `element`: lines that set `l`, the loss of one element, and `d`, its derivative by the
    prediction, from `xi` and `ti` (the label in x's dtype: labels may be integers), the
    typed constants `one` and `zero` and the locals of `consts`, ((local, argument, value),
    ...): op attributes, passed as arguments and typed in x's dtype. `scale`: 1 / elements
    per sample for the losses that average over them.
    """
    d = site.node(site.group.anchor)
    pred, label = d.inputs
    into = gradient_target(site, pred)
    train = into is not None
    args = ["x", "t"] + (["g"] if train else []) + ["weight", "mean", "scale"] + \
        [arg for _, arg, _ in consts]
    body = ["    n = x.shape[0]", "    xf = _flat(x)", "    tf = _flat(t)"]
    if train:
        body.append("    gf = _flat(g)")
    body += [
        "    per = scale / n if mean else scale   # of the sum of per-element losses",
        "    s = _f(weight * per)                 # d(weight · loss) / d l",
        "    one, zero = _f(1.0), _f(0.0)",
    ]
    body += [f"    {local} = _f({arg})" for local, arg, _ in consts]
    body += ["    total = 0.0",
             "    for i in range(xf.size):",
             "        xi = xf[i]",
             "        ti = _f(tf[i])"]
    body += [f"        {line}" for line in element]
    body.append("        total += l")
    if train:
        body.append("        gf[i] = s * d")
    body.append("    return total * per")
    call = [site.val(pred), site.val(label)] + ([into] if train else []) + \
        [repr(float(d.attrs["weight"])), str(d.attrs["reduction"] == "mean"),
         repr(float(scale))] + [repr(float(value)) for _, _, value in consts]
    return Kernel(args, body, call, returns=True)


def elements(site) -> int:
    """How many elements each sample of the loss's prediction has."""
    return math.prod(site.shape(site.node(site.group.anchor).inputs[0]))
