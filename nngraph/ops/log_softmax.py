"""Log-softmax over the last axis: y_i = (x_i - m) - log Σ_k exp(x_k - m), m = max_k x_k.

Subtracting the row maximum keeps exp from overflowing and the log's argument >= 1.
Backward: dx_i = gy_i - exp(y_i) Σ_k gy_k. Not elementwise, so there is no scalar rule.
"""
import math

import numpy as np

from .base import Fusion, OpDef, ShapeError


def shape(a, shapes):
    (x,) = shapes
    if len(x) == 0:
        raise ShapeError("log_softmax normalises over the last axis, but each sample is a "
                         "single number (shape []); give it a vector such as [classes]")
    return x


def forward(ctx, a, xs, p):
    x = xs[0]
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def backward(ctx, a, xs, p, y, gy):
    return [gy - np.exp(y) * gy.sum(axis=-1, keepdims=True)], {}


def flops(a, shapes, out):
    return 5 * math.prod(out)         # max, subtract, exp, sum, subtract (+ one log per row)


OP = OpDef("log_softmax", "activation", Fusion.REDUCTION, shape, flops=flops,
           forward=forward, backward=backward, takes_activation=False,
           doc="x_i - log sum_k exp(x_k) over the last axis")
