"""mean_absolute_error (mae): the mean of |x - t| over each sample's elements, and its
gradient sign(x - t) / elements (0 where x equals t, as numpy's sign), in one pass."""
from __future__ import annotations

from . import lowers
from ._pointwise import elements, pointwise_loss


ELEMENT = ["e = xi - ti", "l = abs(e)", "d = one if e > zero else -one if e < zero else zero"]
"""An element's loss l and its derivative d (pointwise_loss says the names); the CUDA
lowering runs the same lines."""


@lowers("mean_absolute_error", "mae", kind="loss")
def mean_absolute_error_loss(site):
    return pointwise_loss(site, ELEMENT, scale=1.0 / elements(site))
