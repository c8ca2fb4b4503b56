"""Squared error: factor · Σ_i (x_i - t_i)² per sample, then mean or sum over the batch.

With the default factor 0.5 (the half squared error of classic backprop) the gradient is
simply x - t.
"""
from . import _losses
from .base import Attr, Float, Fusion, OpDef


def forward(ctx, a, xs, p):
    x, t = _losses.split(xs)
    return _losses.reduce(a, a.factor * (x - t) ** 2)


def backward(ctx, a, xs, p, y, gy):
    x, t = _losses.split(xs)
    return [_losses.input_grad(a, gy, 2 * a.factor * (x - t)), None], {}


OP = OpDef("squared_error", "loss", Fusion.REDUCTION,
           _losses.labels_like_prediction("squared_error", "targets"),
           attrs=(Attr("factor", Float(0.0), 0.5, "multiplies the sum of squares; 0.5 halves it"),),
           inputs=(2, 2), flops=_losses.per_element_flops(3), forward=forward, backward=backward,
           differentiable_inputs=(0,), task="values",
           doc="factor * sum_i (x_i - t_i)^2, factor 0.5 by default")
