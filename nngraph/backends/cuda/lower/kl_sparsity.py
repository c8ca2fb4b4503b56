"""kl_sparsity: beta * sum_j KL(rho || mean_j) of the batch's mean activations and, in
training, its gradient, on the device (kernels/cuda/sparsity.py): a thread per unit for
its mean, term and gradient, the terms summed on the device and only the total read back.
As ops/kl_sparsity.py: the means are clipped into [1e-7, 1 - 1e-7], clipped units get no
gradient, and the reduction changes nothing (the penalty is of the batch already)."""
from __future__ import annotations

import math

from . import Call, Extern, lowers
from ._losses import gradient_target
from ....ops.kl_sparsity import HIGH, LOW


@lowers("kl_sparsity", kind="loss", calls=("_sparsity.kl_sparsity_loss",))
def kl_sparsity_loss(site):
    d = site.node(site.group.anchor)
    h = d.inputs[0]
    units = math.prod(site.shape(h))
    into = gradient_target(site, h)
    q = site.scratch("mean", (units,), layout="fixed")
    terms = site.scratch("terms", (units,), layout="fixed")
    total = site.scratch("total", (1,), layout="fixed")
    a = d.attrs
    return Extern([Call("_sparsity.kl_sparsity_loss",
                        [site.val(h), into or "None", q, terms, total, repr(float(a["rho"])),
                         repr(float(a["beta"])), repr(float(a["weight"])), repr(LOW),
                         repr(HIGH)], returns=True)])
