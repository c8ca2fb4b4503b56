"""Ramp (hard linear saturation): y = clip(x, -1, 1); gradient 1 inside (-1, 1), 0 outside."""
import numpy as np

from .base import Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    return np.clip(xs[0], -1, 1)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    return [gy * ((x > -1) & (x < 1))], {}


OP = OpDef("ramp", "activation", Fusion.ELEMWISE, same_shape, flops=elementwise_flops,
           forward=forward, backward=backward, takes_activation=False,
           scalar=("-1.0 if x < -1 else (1.0 if x > 1 else x)",
                   "gy if -1 < y < 1 else 0.0"),
           doc="clip(x, -1, 1)")
