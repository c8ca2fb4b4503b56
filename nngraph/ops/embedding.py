"""Embedding lookup: y[..., :] = W[x[...]], W of shape (vocab, dim).

Input: integer indices, one per sample (shape ()) or a sequence of them (T,); output (dim,)
or (T, dim). Indices have no gradient; W's gradient adds up the rows of every occurrence.
"""
import numpy as np

from ..errors import DataError
from .base import Attr, Fusion, Int, OpDef, ParamSpec, ShapeError


def shape(a, shapes):
    (x,) = shapes
    if len(x) > 1:
        dims = "x".join(map(str, x))
        raise ShapeError(f"embedding expects token indices of shape () or (steps,), got {dims}")
    return x + (a.dim,)


def params(a, shapes):
    return {"W": ParamSpec((a.vocab, a.dim), {"uniform": {"low": -0.05, "high": 0.05}},
                           "weight", a.vocab, a.dim)}


def flops(a, shapes, out):
    return 0                              # a lookup copies, it computes nothing


def forward(ctx, a, xs, p):
    idx = xs[0]
    if idx.dtype.kind not in "iu":
        raise DataError(f"embedding needs integer token indices, got {idx.dtype} values")
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if lo < 0 or hi >= a.vocab:
            bad = lo if lo < 0 else hi
            raise DataError(f"embedding: token index {bad} is outside the vocabulary "
                            f"[0, {a.vocab}) (vocab = {a.vocab})")
    return p["W"][idx]


def backward(ctx, a, xs, p, y, gy):
    gw = np.zeros_like(p["W"])
    np.add.at(gw, xs[0].reshape(-1), gy.reshape(-1, a.dim))   # repeated indices accumulate
    return [None], {"W": gw}


OP = OpDef("embedding", "layer", Fusion.OPAQUE, shape,
           attrs=(Attr("vocab", Int(1), doc="number of distinct token indices, 0 to vocab-1"),
                  Attr("dim", Int(1), doc="length of each token's vector")),
           params=params, flops=flops, forward=forward, backward=backward,
           int_inputs=(0,), differentiable_inputs=(),
           doc="Looks up row x of W (vocab, dim) for every integer index x.")
