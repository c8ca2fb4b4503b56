"""Gaussian activation (radial basis): y = exp(-x² / σ²), dy/dx = -2x / σ² · y."""
import math

import numpy as np

from .base import Attr, Float, Fusion, OpDef, same_shape


def forward(ctx, a, xs, p):
    x = xs[0]
    return np.exp(-(x * x) / (a.sigma * a.sigma))


def backward(ctx, a, xs, p, y, gy):
    return [gy * (-2 / (a.sigma * a.sigma)) * xs[0] * y], {}


def flops(a, shapes, out):
    return 3 * math.prod(out)         # square, scale, exp


OP = OpDef("gaussian", "activation", Fusion.ELEMWISE, same_shape,
           attrs=(Attr("sigma", Float(0.0, exclusive_min=True), 1.0, "width of the bell"),),
           flops=flops, forward=forward, backward=backward, takes_activation=False,
           scalar=("math.exp(-(x * x) / (sigma * sigma))",
                   "gy * (-2 / (sigma * sigma)) * x * y"),
           doc="exp(-x^2 / sigma^2)")
