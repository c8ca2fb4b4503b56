"""1-D max pooling over (C, L) inputs: y[c, i] = max of x[c, i*s : i*s + size].

The same rules as maxpool2d over a height of 1: padding holds -inf, the gradient goes to the
first arg-max of each window.
"""
from . import _pool
from .base import Fusion, OpDef
from .maxpool2d import attrs, backward, forward


def shape(a, shapes):
    x = shapes[0]
    return (x[0],) + _pool.window(OP.name, a, x).out


def flops(a, shapes, out):
    return _pool.flops(_pool.window(OP.name, a, shapes[0]), shapes[0][0])


OP = OpDef("maxpool1d", "layer", Fusion.REDUCTION, shape, attrs=attrs(1), flops=flops,
           forward=forward, backward=backward,
           doc="1-D max pooling over (channels, length); stride defaults to the window size.")
