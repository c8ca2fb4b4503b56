"""Reshape: the same values per sample in row-major order, viewed with the shape `shape`.

One dimension may be -1; it is inferred from the element count.
"""
import math

from .base import Attr, Fusion, IntList, OpDef, ShapeError


def _count(dims) -> str:
    total = math.prod(dims)
    return f"{'x'.join(map(str, dims))} = {total}" if len(dims) > 1 else str(total)


def shape(a, shapes):
    x, want = shapes[0], tuple(a.shape)
    total = math.prod(x)
    if -1 in want:
        known = math.prod(d for d in want if d != -1)
        if total % known:
            raise ShapeError(f"cannot reshape {_count(x)} values into "
                             f"{'x'.join(map(str, want))}: {total} is not a multiple of "
                             f"{known}", attr="shape")
        want = tuple(total // known if d == -1 else d for d in want)
    if math.prod(want) != total:
        raise ShapeError(f"cannot reshape {_count(x)} values into {_count(want)}", attr="shape")
    return want


def forward(ctx, a, xs, p):
    x = xs[0]
    return x.reshape((len(x),) + shape(a, [x.shape[1:]]))


def backward(ctx, a, xs, p, y, gy):
    return [gy.reshape(xs[0].shape)], {}


OP = OpDef("reshape", "reshape", Fusion.INJECTIVE, shape,
           attrs=(Attr("shape", IntList(allow_minus_one=True),
                       doc="output shape per sample, without the batch; one entry may be -1"),),
           forward=forward, backward=backward,
           doc="Gives each sample a new shape with the same number of values.")
