"""Exponential linear unit: y = x if x > 0 else alpha·(exp(x) - 1).

For x <= 0, dy/dx = alpha·exp(x) = y + alpha, so backward needs no second exp.
"""
import numpy as np

from .base import Attr, Float, Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    x = xs[0]
    # expm1 of min(x, 0): the branch np.where discards must not overflow for large x
    return np.where(x > 0, x, a.alpha * np.expm1(np.minimum(x, 0)))


def backward(ctx, a, xs, p, y, gy):
    return [np.where(xs[0] > 0, gy, gy * (y + a.alpha))], {}


OP = OpDef("elu", "activation", Fusion.ELEMWISE, same_shape,
           attrs=(Attr("alpha", Float(0.0), 1.0, "the output approaches -alpha as x -> -inf"),),
           flops=elementwise_flops, forward=forward, backward=backward, takes_activation=False,
           scalar=("x if x > 0 else alpha * math.expm1(x)", "gy if y > 0 else gy * (y + alpha)"),
           doc="x if x > 0 else alpha * (exp(x) - 1)")
