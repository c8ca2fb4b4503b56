"""Concatenation of two or more inputs along one axis: y = [x_1, x_2, ..., x_n].

`axis` counts the dimensions after the batch, so 0 (the default) is the channels of NCHW
tensors (Inception modules) and the features of flat vectors; a negative axis counts from the
end. Every other dimension must match. Backward splits the gradient back into the pieces.
"""
import numpy as np

from .base import Attr, Fusion, Int, OpDef, ShapeError


def shape(a, shapes):
    shown = ", ".join(str(list(s)) for s in shapes)
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ShapeError(f"concat needs inputs with the same number of dimensions, got {shown}")
    if rank == 0:
        raise ShapeError("concat needs inputs with at least one dimension, got scalars per "
                         "sample (shape []); reshape them to [1] first")
    if not -rank <= a.axis < rank:
        raise ShapeError(f"axis {a.axis} is out of range for inputs with {rank} dimension(s) "
                         f"({shown}): use {-rank}..{rank - 1}", attr="axis")
    axis = a.axis % rank
    first = shapes[0]
    for j, s in enumerate(shapes[1:], start=2):
        for d in range(rank):
            if d != axis and s[d] != first[d]:
                raise ShapeError(f"concat along axis {axis} needs every other dimension equal, "
                                 f"got {shown}: input {j} differs from input 1 at axis {d} "
                                 f"({s[d]} vs {first[d]})")
    out = list(first)
    out[axis] = sum(s[axis] for s in shapes)
    return tuple(out)


def _batch_axis(a, x):
    """The numpy axis of the arrays, which carry the batch dimension first."""
    return a.axis % (x.ndim - 1) + 1


def forward(ctx, a, xs, p):
    return np.concatenate(xs, axis=_batch_axis(a, xs[0]))


def backward(ctx, a, xs, p, y, gy):
    axis = _batch_axis(a, xs[0])
    ends = np.cumsum([x.shape[axis] for x in xs])[:-1]
    return [np.ascontiguousarray(g) for g in np.split(gy, ends, axis=axis)], {}


OP = OpDef("concat", "merge", Fusion.INJECTIVE, shape, inputs=(2, None),
           attrs=(Attr("axis", Int(), 0, "axis after the batch to join along; 0 = channels"),),
           forward=forward, backward=backward,
           doc="joins inputs along `axis` (channels by default)")
