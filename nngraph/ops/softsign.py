"""Softsign, a rational squashing function in (-1, 1) with polynomial (not exponential)
tails: y = x / (1 + |x|), dy/dx = 1 / (1 + |x|)^2.

The scalar backward uses the output alone, 1 - |y| = 1 / (1 + |x|), so that a fused kernel
need not keep the pre-activation; the numpy rule reads x, which is exact for large |x|.
"""
import math

import numpy as np

from .base import Fusion, OpDef, same_shape


def forward(ctx, a, xs, p):
    x = xs[0]
    return x / (1 + np.abs(x))


def backward(ctx, a, xs, p, y, gy):
    d = 1 + np.abs(xs[0])
    return [gy / (d * d)], {}


def flops(a, shapes, out):
    return 3 * math.prod(out)         # abs, add, divide


OP = OpDef("softsign", "activation", Fusion.ELEMWISE, same_shape, flops=flops,
           forward=forward, backward=backward, takes_activation=False,
           scalar=("x / (1 + math.fabs(x))",
                   "gy * (1 - math.fabs(y)) * (1 - math.fabs(y))"),
           doc="x / (1 + |x|)")
