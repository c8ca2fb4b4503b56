"""kl_sparsity: β Σ_j KL(ρ ‖ ρ̂_j) of the batch's mean activations ρ̂ and, in training,
its gradient, which reaches every sample: 1/batch of each unit's d penalty / d ρ̂_j. One pass
sums the batch into a buffer of one value per unit, one computes the penalty and turns each
mean into its gradient there, one writes that row to every sample. ρ, β and the weight are
arguments. As ops/kl_sparsity.py: ρ̂ is clipped into [1e-7, 1 - 1e-7], clipped units get no
gradient, and the reduction changes nothing (the penalty is of the batch already)."""
from __future__ import annotations

import math

from . import Kernel, lowers
from ._losses import gradient_target
from ....ops.kl_sparsity import HIGH, LOW


@lowers("kl_sparsity", kind="loss")
def kl_sparsity_loss(site):
    d = site.node(site.group.anchor)
    h = d.inputs[0]
    units = math.prod(site.shape(h))
    q = site.scratch("mean", (units,), layout="fixed")
    into = gradient_target(site, h)
    train = into is not None
    args = ["h"] + (["g"] if train else []) + ["q", "weight", "rho", "beta"]
    body = [
        "    n = h.shape[0]",
        "    u = q.size",
        "    hf = _flat(h)",
        "    for j in range(u):",
        "        q[j] = _f(0.0)",
        "    for i in range(n):",
        "        for j in range(u):",
        "            q[j] += hf[i * u + j]",
        "    r, one = _f(rho), _f(1.0)",
        f"    low, high = _f({LOW!r}), _f({HIGH!r})",
        "    s = _f(weight * beta / n)   # d(weight · penalty) / d h = s · d KL / d ρ̂",
        "    total = 0.0",
        "    for j in range(u):",
        "        mean = _f(q[j] / n)",
        "        p = low if mean < low else high if mean > high else mean",
        "        total += r * math.log(r / p) + (one - r) * math.log((one - r) / (one - p))",
    ]
    if train:
        body += [
            "        inside = mean >= low and mean <= high",
            "        q[j] = s * ((one - r) / (one - p) - r / p) if inside else _f(0.0)",
            "    gf = _flat(g)",
            "    for i in range(n):",
            "        for j in range(u):",
            "            gf[i * u + j] = q[j]",
        ]
    body.append("    return beta * total")
    a = d.attrs
    call = [site.val(h)] + ([into] if train else []) + \
        [q, repr(float(a["weight"])), repr(float(a["rho"])), repr(float(a["beta"]))]
    return Kernel(args, body, call, returns=True)
