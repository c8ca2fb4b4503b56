"""mean_squared_error (mse): the mean of (x - t)² over each sample's elements, and its
gradient 2 (x - t) / elements, in one pass."""
from __future__ import annotations

from . import lowers
from ._pointwise import elements, pointwise_loss


@lowers("mean_squared_error", "mse", kind="loss")
def mean_squared_error_loss(site):
    return pointwise_loss(site, ["e = xi - ti", "l = e * e", "d = e + e"],
                          scale=1.0 / elements(site))
