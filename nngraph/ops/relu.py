"""Rectified linear unit: max(x, 0)."""
import numpy as np

from .base import Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    return np.maximum(xs[0], 0)


def backward(ctx, a, xs, p, y, gy):
    return [gy * (xs[0] > 0)], {}


OP = OpDef("relu", "activation", Fusion.ELEMWISE, same_shape, flops=elementwise_flops,
           forward=forward, backward=backward, takes_activation=False,
           scalar=("x if x > 0 else 0", "gy if y > 0 else 0"),
           doc="max(x, 0)")
