"""logistic with labels c = ±1: log(1 + exp(-c x)) = softplus(z), z = -c x, in its stable
form, and its gradient -c σ(z) from the same exp, in one pass."""
from __future__ import annotations

from . import lowers
from ._pointwise import pointwise_loss


ELEMENT = [
    "z = -ti * xi",
    "e = math.exp(-abs(z))",
    "l = (z if z > zero else zero) + math.log1p(e)",
    "d = -ti * (one / (one + e) if z >= zero else e / (one + e))",
]
"""An element's loss l and its derivative d (pointwise_loss says the names); the CUDA
lowering runs the same lines."""


@lowers("logistic", kind="loss")
def logistic_loss(site):
    return pointwise_loss(site, ELEMENT)
