"""softmax_cross_entropy: the loss and, in training, d loss / d logits in one pass over the
logits. Class indices run a generated kernel; one-hot or probability rows (labels shaped as
the logits) run kernels/cpu/softmax.py's softmax_cross_entropy_probs.

The reduction and the loss's weight are arguments, not constants in the source: every
softmax cross-entropy of a network shares one compiled kernel.
"""
from __future__ import annotations

from . import Kernel, lowers
from ._losses import gradient_target


@lowers("softmax_cross_entropy", kind="loss", calls=("_softmax.softmax_cross_entropy_probs",))
def softmax_xent_loss(site):
    n = site.group.anchor
    d = site.node(n)
    logits, label = d.inputs
    if len(site.shape(logits)) != 1:
        return None
    mean = str(d.attrs["reduction"] == "mean")
    weight = repr(float(d.attrs["weight"]))   # the gradient carries it: d(w·loss)/dx
    if site.shape(label):
        return _probabilities(site, logits, label, mean, weight)
    into = gradient_target(site, logits)
    if into is None:
        return Kernel(["x", "t", "mean"], _CLASSES_LOSS,
                      [site.val(logits), site.val(label), mean], returns=True)
    return Kernel(["x", "t", "g", "mean", "weight"], _CLASSES_TRAIN,
                  [site.val(logits), site.val(label), into, mean, weight], returns=True)


def _row_max(indent):
    """m = the row's maximum (a NaN first stays: the loss is then NaN, as numpy's)."""
    pad = " " * indent
    return [f"{pad}m = x[i, 0]", f"{pad}for j in range(1, k):",
            # (builtin max: a function to compile)
            f"{pad}    m = x[i, j] if x[i, j] > m else m"]


# exp(x - m) is computed once per value and parked in g, which is then scaled in place: the
# exps are most of the work, and a value computed twice may round two ways (NUMBA_NOTES.md).
# Class labels are in range: integer inputs are checked before a run (nngraph/batch.py,
# kernels/cpu/check.py).
_CLASSES_TRAIN = [
    "    n, k = x.shape",
    "    total = 0.0",
    "    scale = _f(weight / n) if mean else _f(weight)",
    "    for i in range(n):",
    *_row_max(8),
    "        s = _f(0.0)",
    "        for j in range(k):",
    "            e = math.exp(x[i, j] - m)",
    "            g[i, j] = e",
    "            s += e",
    "        c = t[i]",
    "        total += math.log(s) - (x[i, c] - m)",
    "        r = scale / s",
    "        for j in range(k):",
    "            g[i, j] *= r",
    "        g[i, c] -= scale",
    "    return total / n if mean else total",
]

_CLASSES_LOSS = [
    "    n, k = x.shape",
    "    total = 0.0",
    "    for i in range(n):",
    *_row_max(8),
    "        s = _f(0.0)",
    "        for j in range(k):",
    "            s += math.exp(x[i, j] - m)",
    "        total += math.log(s) - (x[i, t[i]] - m)",
    "    return total / n if mean else total",
]


def _probabilities(site, logits, label, mean, weight):
    """Labels shaped as the logits: the hand-written kernel, which skips the gradient for a
    0-size g (evaluate passes _none2 and needs no scratch buffer for it). It also counts the
    rows whose arg-max matches the label's, which the driver does not need: a generated
    kernel around it keeps the loss, as the driver's `loss +=` line wants one number."""
    into = gradient_target(site, logits) if site.gen.mode == "train" else None
    body = ["    loss, correct = _softmax.softmax_cross_entropy_probs(x, t, g, mean, weight)",
            "    return loss"]
    return Kernel(["x", "t", "g", "mean", "weight"], body,
                  [site.val(logits), site.val(label), into or "_none2", mean, weight],
                  returns=True)
