"""Fully connected layer: y = x W + b, W of shape (inputs, units).

A flat input (features,) is the usual case; a sequence (T, features) is transformed at every
step, as Keras' Dense does on the last axis.
"""
import math

from .base import Attr, Fusion, Int, OpDef, ParamSpec, ShapeError


def shape(a, shapes):
    (x,) = shapes
    if len(x) == 0:
        raise ShapeError("dense needs at least one feature per sample, got a scalar input")
    if len(x) > 2:
        dims = "x".join(map(str, x))
        raise ShapeError(f"dense expects (features,) or (steps, features), got {dims}: add "
                         f"{{op: flatten}} before it ({dims} = {math.prod(x)} features)")
    return x[:-1] + (a.units,)


def params(a, shapes):
    fan_in = shapes[0][-1]
    out = {"W": ParamSpec((fan_in, a.units), "glorot_uniform", "weight", fan_in, a.units)}
    if a.use_bias:
        out["b"] = ParamSpec((a.units,), "zeros", "bias", fan_in, a.units, regularize=False)
    return out


def flops(a, shapes, out):
    return 2 * math.prod(shapes[0]) * a.units


def forward(ctx, a, xs, p):
    y = xs[0] @ p["W"]
    return y + p["b"] if "b" in p else y


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    x2, g2 = x.reshape(-1, x.shape[-1]), gy.reshape(-1, gy.shape[-1])
    gp = {"W": x2.T @ g2}
    if "b" in p:
        gp["b"] = g2.sum(axis=0)
    return [gy @ p["W"].T], gp


OP = OpDef("dense", "layer", Fusion.ANCHOR, shape,
           attrs=(Attr("units", Int(1), doc="number of output units"),),
           params=params, flops=flops, forward=forward, backward=backward,
           doc="Fully connected layer y = xW + b.")
