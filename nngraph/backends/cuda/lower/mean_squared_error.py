"""mean_squared_error on the device: a thread per element, the CPU lowering's own lines (ELEMENT), the
terms summed on the device and the total read back (_pointwise.py)."""
from __future__ import annotations

from ...cpu.lower.mean_squared_error import ELEMENT
from . import lowers
from ._pointwise import elements, pointwise_loss


@lowers("mean_squared_error", "mse", kind="loss", calls=("_reduce.total",))
def mean_squared_error_loss(site):
    return pointwise_loss(site, ELEMENT, scale=1.0 / elements(site))
