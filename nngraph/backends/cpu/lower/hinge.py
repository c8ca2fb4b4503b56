"""hinge with labels c = ±1: max(0, m - c x) and its gradient -c where the margin is
violated, in one pass; the margin m is an argument."""
from __future__ import annotations

from . import lowers
from ._pointwise import pointwise_loss

ELEMENT = ["v = m - ti * xi", "l = v if v > zero else zero", "d = -ti if v > zero else zero"]
"""An element's loss l and its derivative d, m the margin (pointwise_loss says the names);
the CUDA lowering runs the same lines."""


@lowers("hinge", kind="loss")
def hinge_loss(site):
    margin = site.node(site.group.anchor).attrs["margin"]
    return pointwise_loss(site, ELEMENT, consts=(("m", "margin", margin),))
