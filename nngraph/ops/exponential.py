"""Exponential loss (AdaBoost's) with labels c = ±1: exp(-c·x) per element, summed per sample.

The gradient is -c·exp(-c·x). Unlike the logistic loss it grows exponentially with a wrong
confident prediction, so one outlier can dominate a batch.
"""
import numpy as np

from . import _losses
from .base import Fusion, OpDef


def forward(ctx, a, xs, p):
    x, c = _losses.split(xs)
    return _losses.reduce(a, np.exp(-c * x))


def backward(ctx, a, xs, p, y, gy):
    x, c = _losses.split(xs)
    return [_losses.input_grad(a, gy, -c * np.exp(-c * x)), None], {}


OP = OpDef("exponential", "loss", Fusion.REDUCTION,
           _losses.labels_like_prediction("exponential", "labels of +1 or -1"),
           inputs=(2, 2), flops=_losses.per_element_flops(3), forward=forward, backward=backward,
           differentiable_inputs=(0,), task="signs",
           doc="exp(-c*x), labels c = +1 or -1")
