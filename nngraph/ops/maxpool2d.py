"""2-D max pooling over NCHW inputs: y[c, i, j] = max of x[c] over the window at (i*sh, j*sw).

Padding cells hold -inf, so they never win. The gradient goes to the arg-max of each window
(the first one in row-major order on ties); overlapping windows add up. The rules work for any
rank, which is how maxpool1d reuses them.
"""
import numpy as np

from . import _pool
from .base import Attr, Fusion, IntTuple, OpDef, Padding


def shape(a, shapes):
    x = shapes[0]
    return (x[0],) + _pool.window(OP.name, a, x).out


def flops(a, shapes, out):
    return _pool.flops(_pool.window(OP.name, a, shapes[0]), shapes[0][0])


def forward(ctx, a, xs, p):
    x = xs[0]
    w = _pool.window(f"maxpool{x.ndim - 2}d", a, x.shape[1:])
    cols = _pool.gather(w, x, -np.inf)
    arg = cols.argmax(axis=-1)[..., None]
    ctx.saved["argmax"] = arg
    return np.take_along_axis(cols, arg, axis=-1).reshape(x.shape[:2] + w.out)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    w = _pool.window(f"maxpool{x.ndim - 2}d", a, x.shape[1:])
    arg = ctx.saved["argmax"]
    g = np.zeros(arg.shape[:-1] + (w.size[0] * w.size[1],), dtype=gy.dtype)
    np.put_along_axis(g, arg, gy.reshape(arg.shape), axis=-1)
    return [_pool.scatter(w, g, x.shape)], {}


def attrs(n):
    return (Attr("size", IntTuple(n), doc="window size, n or a list of one per axis"),
            Attr("stride", IntTuple(n), None, "step between windows; defaults to size"),
            Attr("padding", Padding(n), "valid", "'valid', 'same' or a number"))


OP = OpDef("maxpool2d", "layer", Fusion.REDUCTION, shape, attrs=attrs(2), flops=flops,
           forward=forward, backward=backward,
           doc="2-D max pooling, NCHW; stride defaults to the window size.")
