"""softmax_cross_entropy on class indices: each row's loss and gradient in one block
(kernels/cuda/reduce.py, shared-memory tree reductions), the rows summed on the device and
only the total read back. Labels shaped as the logits (one-hot, probabilities) run their
numpy rule for now."""
from __future__ import annotations

from . import Call, Extern, lowers
from ._losses import gradient_target


@lowers("softmax_cross_entropy", kind="loss", calls=("_reduce.softmax_cross_entropy_loss",))
def softmax_xent_loss(site):
    n = site.group.anchor
    d = site.node(n)
    logits, label = d.inputs
    if len(site.shape(logits)) != 1 or site.shape(label):
        return None
    into = gradient_target(site, logits) or site.scratch("g", site.shape(logits))
    rows = site.scratch("rows", ())
    total = site.scratch("total", (1,), layout="fixed")
    mean = str(d.attrs["reduction"] == "mean")
    return Extern([Call("_reduce.softmax_cross_entropy_loss",
                        [site.val(logits), site.val(label), rows, into, total, mean,
                         repr(float(d.attrs["weight"]))], returns=True)])
