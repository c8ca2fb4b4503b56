"""Softmax over the last axis: y_i = exp(x_i - m) / Σ_k exp(x_k - m), m = max_k x_k.

Subtracting the row maximum changes nothing mathematically and keeps exp from overflowing.
Backward: dx_i = y_i (gy_i - Σ_k gy_k y_k). Each output depends on its whole row, so this
is a reduction with no scalar rule.
"""
import math

import numpy as np

from .base import Fusion, OpDef, ShapeError


def shape(a, shapes):
    (x,) = shapes
    if len(x) == 0:
        raise ShapeError("softmax normalises over the last axis, but each sample is a single "
                         "number (shape []); give it a vector such as [classes]")
    return x


def forward(ctx, a, xs, p):
    x = xs[0]
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def backward(ctx, a, xs, p, y, gy):
    return [y * (gy - (gy * y).sum(axis=-1, keepdims=True))], {}


def flops(a, shapes, out):
    return 5 * math.prod(out)         # max, subtract, exp, sum, divide


OP = OpDef("softmax", "activation", Fusion.REDUCTION, shape, flops=flops,
           forward=forward, backward=backward, takes_activation=False,
           doc="exp(x_i) / sum_k exp(x_k) over the last axis")
