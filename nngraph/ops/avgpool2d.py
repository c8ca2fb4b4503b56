"""2-D average pooling over NCHW inputs: y[c, i, j] = sum of the window at (i*sh, j*sw) / (kh*kw).

Padding cells count as zeros and the divisor is always the full window area (PyTorch's
count_include_pad=True), so every output is the same linear function of its window and the
gradient spreads evenly: gx gets gy / (kh*kw) from every window it is in.
"""
import numpy as np

from . import _pool
from .base import Fusion, OpDef
from .maxpool2d import attrs


def shape(a, shapes):
    x = shapes[0]
    return (x[0],) + _pool.window(OP.name, a, x).out


def flops(a, shapes, out):
    return _pool.flops(_pool.window(OP.name, a, shapes[0]), shapes[0][0])


def forward(ctx, a, xs, p):
    x = xs[0]
    w = _pool.window(OP.name, a, x.shape[1:])
    return _pool.gather(w, x, 0.0).mean(axis=-1).reshape(x.shape[:2] + w.out)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    w = _pool.window(OP.name, a, x.shape[1:])
    area = w.size[0] * w.size[1]
    g = np.repeat((gy / area)[..., None], area, axis=-1)
    return [_pool.scatter(w, g, x.shape)], {}


OP = OpDef("avgpool2d", "layer", Fusion.REDUCTION, shape, attrs=attrs(2), flops=flops,
           forward=forward, backward=backward,
           doc="2-D average pooling, NCHW; padding counts as zeros in the window average.")
