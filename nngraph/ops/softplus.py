"""Softplus, a smooth rectifier: y = log(1 + exp(x)), dy/dx = sigmoid(x).

Computed as max(x, 0) + log1p(exp(-|x|)), which never overflows and keeps full precision
for very negative x (where y ≈ exp(x) is tiny).
"""
import math

import numpy as np

from .base import Fusion, OpDef, same_shape
from .sigmoid import sigmoid


def softplus(x):
    """Numerically stable log(1 + exp(x)) of an array; keeps its dtype (shared with the losses)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def forward(ctx, a, xs, p):
    return softplus(xs[0])


def backward(ctx, a, xs, p, y, gy):
    return [gy * sigmoid(xs[0])], {}


def flops(a, shapes, out):
    return 4 * math.prod(out)         # abs, exp, log1p, add


OP = OpDef("softplus", "activation", Fusion.ELEMWISE, same_shape, flops=flops,
           forward=forward, backward=backward, takes_activation=False,
           scalar=("x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))",
                   # sigmoid(x) = 1 - exp(-softplus(x)): the output alone is enough
                   "-gy * math.expm1(-y)"),
           doc="log(1 + exp(x))")
