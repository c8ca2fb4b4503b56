"""Batch normalization per channel (axis 1), over the batch and every axis after the channel:

    x_hat = (x - mu) / sqrt(var + eps),   y = gamma * x_hat + beta

Input (C,), (C, L) or (C, H, W). In training mu and var are the batch's statistics (biased
variance, as PyTorch), and the running statistics move towards them, Keras' convention:
running = momentum * running + (1 - momentum) * batch value, the running variance taking the
unbiased batch variance (as PyTorch). In evaluation the running statistics are used, so the
layer is a fixed per-channel affine map.
"""
import math

import numpy as np

from .base import Attr, Float, Fusion, OpDef, ParamSpec, ShapeError, StateSpec


def shape(a, shapes):
    (x,) = shapes
    if not 1 <= len(x) <= 3:
        dims = "x".join(map(str, x)) or "a scalar"
        raise ShapeError(f"batchnorm expects (channels,), (channels, length) or "
                         f"(channels, height, width), got {dims}")
    return x


def params(a, shapes):
    c = shapes[0][0]
    out = {"gamma": ParamSpec((c,), "ones", "other", c, c, regularize=False)}
    if a.use_bias:
        out["beta"] = ParamSpec((c,), "zeros", "bias", c, c, regularize=False)
    return out


def state(a, shapes):
    c = shapes[0][0]
    return {"running_mean": StateSpec((c,), 0.0), "running_var": StateSpec((c,), 1.0)}


def flops(a, shapes, out):
    # per value: the mean (1) and variance (3), normalizing (2) and the affine map (2)
    return 8 * math.prod(out)


def _per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def forward(ctx, a, xs, p):
    x = xs[0]
    axes = (0,) + tuple(range(2, x.ndim))
    for k, spec in state(a, [x.shape[1:]]).items():
        ctx.state.setdefault(k, np.full(spec.shape, spec.init, dtype=x.dtype))
    run_mean, run_var = ctx.state["running_mean"], ctx.state["running_var"]
    if ctx.training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        count = x.size // x.shape[1]
        unbiased = var * (count / max(count - 1, 1))
        run_mean[...] = a.momentum * run_mean + (1 - a.momentum) * mean
        run_var[...] = a.momentum * run_var + (1 - a.momentum) * unbiased
    else:
        mean, var = run_mean, run_var
    inv_std = (1 / np.sqrt(var + a.eps)).astype(x.dtype)
    x_hat = (x - _per_channel(mean.astype(x.dtype), x.ndim)) * _per_channel(inv_std, x.ndim)
    ctx.saved.update(x_hat=x_hat, inv_std=inv_std, training=ctx.training)
    y = x_hat * _per_channel(p["gamma"], x.ndim)
    return y + _per_channel(p["beta"], x.ndim) if "beta" in p else y


def backward(ctx, a, xs, p, y, gy):
    x_hat, inv_std = ctx.saved["x_hat"], ctx.saved["inv_std"]
    axes = (0,) + tuple(range(2, gy.ndim))
    gp = {"gamma": (gy * x_hat).sum(axis=axes)}
    if "beta" in p:
        gp["beta"] = gy.sum(axis=axes)
    scale = _per_channel(p["gamma"] * inv_std, gy.ndim)
    if not ctx.saved["training"]:
        return [gy * scale], gp
    # mu and var depend on every value of the channel: remove the gradient's mean and its
    # component along x_hat (the standard batch-norm backward).
    g_mean = _per_channel(gy.mean(axis=axes), gy.ndim)
    g_proj = _per_channel((gy * x_hat).mean(axis=axes), gy.ndim)
    return [scale * (gy - g_mean - x_hat * g_proj)], gp


OP = OpDef("batchnorm", "layer", Fusion.REDUCTION, shape,
           attrs=(Attr("momentum", Float(0.0, 1.0, exclusive_max=True), 0.9,
                       "running = momentum * running + (1 - momentum) * batch statistic"),
                  Attr("eps", Float(0.0, exclusive_min=True), 1e-5,
                       "added to the variance before the square root")),
           params=params, state=state, flops=flops, forward=forward, backward=backward,
           doc="Batch normalization per channel: y = gamma (x - mu) / sqrt(var + eps) + beta.")
