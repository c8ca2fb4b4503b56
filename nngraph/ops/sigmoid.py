"""Logistic sigmoid: y = 1 / (1 + exp(-x)), dy/dx = y (1 - y).

exp is only ever taken of -|x|, so nothing overflows for large |x|: for x < 0 the
equivalent form exp(x) / (1 + exp(x)) is used.
"""
import math

import numpy as np

from .base import Fusion, OpDef, same_shape


def sigmoid(x):
    """Numerically stable sigmoid of an array; keeps its dtype (shared with the losses)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def forward(ctx, a, xs, p):
    return sigmoid(xs[0])


def backward(ctx, a, xs, p, y, gy):
    return [gy * y * (1 - y)], {}


def flops(a, shapes, out):
    return 3 * math.prod(out)         # exp, add, divide


OP = OpDef("sigmoid", "activation", Fusion.ELEMWISE, same_shape, flops=flops,
           forward=forward, backward=backward, takes_activation=False,
           scalar=("1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))",
                   "gy * y * (1 - y)"),
           doc="1 / (1 + exp(-x))")
