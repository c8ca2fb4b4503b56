"""Leaky rectifier: y = x if x > 0 else alpha·x, so units below zero still get a gradient."""
import numpy as np

from .base import Attr, Float, Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    x = xs[0]
    return np.where(x > 0, x, a.alpha * x)


def backward(ctx, a, xs, p, y, gy):
    return [np.where(xs[0] > 0, gy, a.alpha * gy)], {}


OP = OpDef("leaky_relu", "activation", Fusion.ELEMWISE, same_shape,
           attrs=(Attr("alpha", Float(0.0), 0.01, "slope for x <= 0"),),
           flops=elementwise_flops, forward=forward, backward=backward, takes_activation=False,
           scalar=("x if x > 0 else alpha * x", "gy if y > 0 else alpha * gy"),
           doc="x if x > 0 else alpha * x")
