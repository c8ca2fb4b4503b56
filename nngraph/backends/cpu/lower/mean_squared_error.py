"""mean_squared_error (mse): the mean of (x - t)² over each sample's elements, and its
gradient 2 (x - t) / elements, in one pass."""
from __future__ import annotations

from . import lowers
from ._pointwise import elements, pointwise_loss


ELEMENT = ["e = xi - ti", "l = e * e", "d = e + e"]
"""An element's loss l and its derivative d (pointwise_loss says the names); the CUDA
lowering runs the same lines."""


@lowers("mean_squared_error", "mse", kind="loss")
def mean_squared_error_loss(site):
    return pointwise_loss(site, ELEMENT, scale=1.0 / elements(site))
