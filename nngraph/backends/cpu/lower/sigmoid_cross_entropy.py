"""sigmoid_cross_entropy on logits: max(x, 0) - x t + log(1 + exp(-|x|)) and its gradient
σ(x) - t from one exp per element, which never overflows whatever the logit."""
from __future__ import annotations

from . import lowers
from ._pointwise import pointwise_loss


ELEMENT = [
    "e = math.exp(-abs(xi))",
    "l = (xi if xi > zero else zero) - xi * ti + math.log1p(e)",
    "d = (one / (one + e) if xi >= zero else e / (one + e)) - ti",   # σ(x) - t
]
"""An element's loss l and its derivative d (pointwise_loss says the names); the CUDA
lowering runs the same lines."""


@lowers("sigmoid_cross_entropy", kind="loss")
def sigmoid_cross_entropy_loss(site):
    return pointwise_loss(site, ELEMENT)
