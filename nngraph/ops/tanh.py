"""Hyperbolic tangent: y = tanh(x), dy/dx = 1 - y²."""
import numpy as np

from .base import Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    return np.tanh(xs[0])


def backward(ctx, a, xs, p, y, gy):
    return [gy * (1 - y * y)], {}


OP = OpDef("tanh", "activation", Fusion.ELEMWISE, same_shape, flops=elementwise_flops,
           forward=forward, backward=backward, takes_activation=False,
           scalar=("math.tanh(x)", "gy * (1 - y * y)"),
           doc="tanh(x)")
