"""Nearest-neighbour upsampling: y[c, i, j] = x[c, i // sh, j // sw], (C, H, W) -> (C, H*sh, W*sw).

Each input cell is copied into an sh x sw block, so its gradient is the sum over that block.
"""
from . import _pool
from .base import Attr, Fusion, IntTuple, OpDef


def shape(a, shapes):
    x = shapes[0]
    _pool.check_rank(OP.name, x, 2)
    c, h, w = x
    return (c, h * a.size[0], w * a.size[1])


def forward(ctx, a, xs, p):
    sh, sw = a.size
    return xs[0].repeat(sh, axis=2).repeat(sw, axis=3)


def backward(ctx, a, xs, p, y, gy):
    n, c, h, w = xs[0].shape
    sh, sw = a.size
    return [gy.reshape(n, c, h, sh, w, sw).sum(axis=(3, 5))], {}


OP = OpDef("upsample2d", "layer", Fusion.INJECTIVE, shape,
           attrs=(Attr("size", IntTuple(2), (2, 2), "scale factor, n or [sh, sw]"),),
           forward=forward, backward=backward,
           doc="Nearest-neighbour upsampling by an integer factor per axis, NCHW.")
