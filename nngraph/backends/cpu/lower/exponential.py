"""exponential (AdaBoost's) with labels c = ±1: exp(-c x) and its gradient -c exp(-c x),
one exp per element."""
from __future__ import annotations

from . import lowers
from ._pointwise import pointwise_loss


ELEMENT = ["l = math.exp(-ti * xi)", "d = -ti * l"]
"""An element's loss l and its derivative d (pointwise_loss says the names); the CUDA
lowering runs the same lines."""


@lowers("exponential", kind="loss")
def exponential_loss(site):
    return pointwise_loss(site, ELEMENT)
