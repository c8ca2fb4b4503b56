"""Hinge loss with labels c = ±1: max(0, m - c·x) per element (margin m), summed per sample.

The gradient is -c where the margin is violated (m - c·x > 0) and 0 elsewhere. Labels are
not checked to be ±1: other values scale the loss as the formula says.
"""
import numpy as np

from . import _losses
from .base import Attr, Float, Fusion, OpDef


def forward(ctx, a, xs, p):
    x, c = _losses.split(xs)
    return _losses.reduce(a, np.maximum(a.margin - c * x, 0))


def backward(ctx, a, xs, p, y, gy):
    x, c = _losses.split(xs)
    return [_losses.input_grad(a, gy, -c * (a.margin - c * x > 0)), None], {}


OP = OpDef("hinge", "loss", Fusion.REDUCTION,
           _losses.labels_like_prediction("hinge", "labels of +1 or -1"),
           attrs=(Attr("margin", Float(0.0), 1.0, "the margin m"),),
           inputs=(2, 2), flops=_losses.per_element_flops(3), forward=forward, backward=backward,
           differentiable_inputs=(0,), task="signs",
           doc="max(0, m - c*x), labels c = +1 or -1")
