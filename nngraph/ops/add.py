"""Elementwise sum of two or more inputs of identical shapes: y = x_1 + x_2 + ... + x_n.

The merge of residual blocks. Every input receives the output gradient unchanged.
"""
import math

from .base import Fusion, OpDef, ShapeError


def shape(a, shapes):
    if any(tuple(s) != tuple(shapes[0]) for s in shapes[1:]):
        raise ShapeError("add needs inputs of identical shapes, got "
                         + ", ".join(str(list(s)) for s in shapes))
    return tuple(shapes[0])


def forward(ctx, a, xs, p):
    y = xs[0].copy()
    for x in xs[1:]:
        y += x
    return y


def backward(ctx, a, xs, p, y, gy):
    # one array per input: a caller may accumulate into each of them in place
    return [gy.copy() for _ in xs], {}


def flops(a, shapes, out):
    return (len(shapes) - 1) * math.prod(out)


OP = OpDef("add", "merge", Fusion.ELEMWISE, shape, inputs=(2, None), flops=flops,
           forward=forward, backward=backward,
           doc="x_1 + x_2 + ... (inputs of identical shapes)")
