"""Global average pooling: y[c] = mean of x[c, :, :] over all H*W positions, (C, H, W) -> (C,)."""
import math

import numpy as np

from . import _pool
from .base import Fusion, OpDef


def shape(a, shapes):
    x = shapes[0]
    _pool.check_rank(OP.name, x, 2)
    return (x[0],)


def flops(a, shapes, out):
    return math.prod(shapes[0])


def forward(ctx, a, xs, p):
    return xs[0].mean(axis=(2, 3))


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    g = gy[:, :, None, None] / (x.shape[2] * x.shape[3])
    return [np.repeat(np.repeat(g, x.shape[2], axis=2), x.shape[3], axis=3)], {}


OP = OpDef("global_avgpool2d", "layer", Fusion.REDUCTION, shape, flops=flops,
           forward=forward, backward=backward,
           doc="Average of each channel over all positions: (C, H, W) -> (C,).")
