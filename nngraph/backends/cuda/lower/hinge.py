"""hinge on the device: a thread per element, the CPU lowering's own lines (ELEMENT), the
terms summed on the device and the total read back (_pointwise.py)."""
from __future__ import annotations

from ...cpu.lower.hinge import ELEMENT
from . import lowers
from ._pointwise import pointwise_loss


@lowers("hinge", kind="loss", calls=("_reduce.total",))
def hinge_loss(site):
    margin = site.node(site.group.anchor).attrs["margin"]
    return pointwise_loss(site, ELEMENT, consts=(("m", "margin", margin),))
