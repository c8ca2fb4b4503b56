"""A learned affine map per channel, Caffe's Scale layer: y = x * W_c + b_c, with c the
channel, the first axis of each sample ((C,), (C, L), (C, H, W), ...; for a flat (features,)
input a scale per feature). W starts at ones and b at zeros, so a new layer is the identity.

It is the second half of Caffe's batch normalization (BatchNorm then Scale), which ONNX
model-zoo networks converted from Caffe (DenseNet, Inception v2) carry as a Mul and an Add
by per-channel constants; where those cannot fold into the convolution before them (after a
batchnorm, a concat or a layer read elsewhere) the ONNX import makes them this layer. Like a
batchnorm's gamma and beta, neither parameter is regularized: weight decay would pull the
map towards zero, which is not what a penalty on weights is for.
"""
import math

import numpy as np

from .base import Fusion, OpDef, ParamSpec, ShapeError


def shape(a, shapes):
    (x,) = shapes
    if len(x) == 0:
        raise ShapeError("scale learns a factor per channel: it needs (channels, ...) per "
                         "sample, got a scalar input")
    return x


def params(a, shapes):
    c = shapes[0][0]
    out = {"W": ParamSpec((c,), "ones", "weight", 1, 1, regularize=False)}
    if a.use_bias:
        out["b"] = ParamSpec((c,), "zeros", "bias", 1, 1, regularize=False)
    return out


def flops(a, shapes, out):
    # per value: the product, and the sum when there is a bias
    return (2 if a.use_bias else 1) * math.prod(out)


def _per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def forward(ctx, a, xs, p):
    x = xs[0]
    y = x * _per_channel(p["W"], x.ndim)
    return y + _per_channel(p["b"], x.ndim) if "b" in p else y


def backward(ctx, a, xs, p, y, gy):
    """dy/dx = W_c; dy/dW_c sums x * gy over channel c's values, dy/db_c sums gy."""
    x = xs[0]
    axes = (0,) + tuple(range(2, x.ndim))
    gp = {"W": (x * gy).sum(axis=axes).astype(x.dtype, copy=False)}
    if "b" in p:
        gp["b"] = gy.sum(axis=axes).astype(x.dtype, copy=False)
    return [gy * _per_channel(p["W"], x.ndim)], gp


OP = OpDef("scale", "layer", Fusion.BROADCAST, shape,
           params=params, flops=flops, forward=forward, backward=backward,
           doc="Affine map per channel (Caffe's Scale): y = x * W + b, W and b per channel.")
