"""exponential on the device: a thread per element, the CPU lowering's own lines (ELEMENT), the
terms summed on the device and the total read back (_pointwise.py)."""
from __future__ import annotations

from ...cpu.lower.exponential import ELEMENT
from . import lowers
from ._pointwise import pointwise_loss


@lowers("exponential", kind="loss", calls=("_reduce.total",))
def exponential_loss(site):
    return pointwise_loss(site, ELEMENT)
