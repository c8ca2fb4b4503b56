"""Global average pooling: y[c] = mean of x[c, :, :] over all H*W positions, (C, H, W) -> (C,)."""
import numpy as np

from . import _pool
from .base import Fusion, OpDef

shape = _pool.global_shape("global_avgpool2d")
flops = _pool.global_flops


def forward(ctx, a, xs, p):
    return xs[0].mean(axis=(2, 3))


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    g = gy[:, :, None, None] / (x.shape[2] * x.shape[3])
    return [np.repeat(np.repeat(g, x.shape[2], axis=2), x.shape[3], axis=3)], {}


OP = OpDef("global_avgpool2d", "layer", Fusion.REDUCTION, shape, flops=flops,
           forward=forward, backward=backward,
           doc="Average of each channel over all positions: (C, H, W) -> (C,).")
