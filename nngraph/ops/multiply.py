"""Elementwise product of two or more inputs of identical shapes: y = x_1 · x_2 · ... · x_n.

The gradient of input j is gy times the product of the other inputs, formed directly rather
than as y / x_j, which would fail wherever x_j is zero.
"""
import math

from .base import Fusion, OpDef, ShapeError


def shape(a, shapes):
    if any(tuple(s) != tuple(shapes[0]) for s in shapes[1:]):
        raise ShapeError("multiply needs inputs of identical shapes, got "
                         + ", ".join(str(list(s)) for s in shapes))
    return tuple(shapes[0])


def forward(ctx, a, xs, p):
    y = xs[0].copy()
    for x in xs[1:]:
        y *= x
    return y


def backward(ctx, a, xs, p, y, gy):
    gxs = []
    for j in range(len(xs)):
        g = gy.copy()
        for k, x in enumerate(xs):
            if k != j:
                g *= x
        gxs.append(g)
    return gxs, {}


def flops(a, shapes, out):
    return (len(shapes) - 1) * math.prod(out)


OP = OpDef("multiply", "merge", Fusion.ELEMWISE, shape, inputs=(2, None), flops=flops,
           forward=forward, backward=backward,
           doc="x_1 * x_2 * ... elementwise (inputs of identical shapes)")
