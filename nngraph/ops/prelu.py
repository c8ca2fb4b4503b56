"""Parametric rectifier (He et al. 2015): y = x if x >= 0 else a_c * x, with a learned slope
a per channel (the first axis of each sample: (C,), (C, L), (C, H, W), ...; for a flat
(features,) input a slope per feature), as PyTorch's PReLU(num_parameters=C) and ONNX's PRelu
with a [C, 1, 1] slope. The slope starts at 0.25, PyTorch's default; `weight_init` sets it
otherwise. Like a batchnorm scale it is never regularized: weight decay would pull the unit
towards a plain ReLU, which is not what a penalty on weights is for.
"""
import math

import numpy as np

from .base import Fusion, OpDef, ParamSpec, ShapeError


def shape(a, shapes):
    (x,) = shapes
    if len(x) == 0:
        raise ShapeError("prelu learns a slope per channel: it needs (channels, ...) per "
                         "sample, got a scalar input")
    return x


def params(a, shapes):
    c = shapes[0][0]
    return {"a": ParamSpec((c,), 0.25, "weight", 1, 1, regularize=False)}


def flops(a, shapes, out):
    # per value: the comparison and the product
    return 2 * math.prod(out)


def _per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def forward(ctx, a, xs, p):
    x = xs[0]
    return np.where(x >= 0, x, _per_channel(p["a"], x.ndim) * x)


def backward(ctx, a, xs, p, y, gy):
    """dy/dx is 1 or a; dy/da_c sums x * gy over the negative values of channel c."""
    x = xs[0]
    neg = x < 0
    axes = (0,) + tuple(range(2, x.ndim))
    gx = np.where(neg, _per_channel(p["a"], x.ndim) * gy, gy)
    return [gx], {"a": np.where(neg, x * gy, 0).sum(axis=axes).astype(x.dtype, copy=False)}


OP = OpDef("prelu", "layer", Fusion.BROADCAST, shape,
           params=params, flops=flops, forward=forward, backward=backward,
           doc="Parametric ReLU: y = x if x >= 0 else a * x, a learned slope per channel.")
