"""Logistic loss with labels c = ±1: log(1 + exp(-c·x)) per element, summed per sample.

That is softplus(-c·x), computed in its stable form; the gradient is -c·σ(-c·x).
"""
from . import _losses
from .base import Fusion, OpDef
from .sigmoid import sigmoid
from .softplus import softplus


def forward(ctx, a, xs, p):
    x, c = _losses.split(xs)
    return _losses.reduce(a, softplus(-c * x))


def backward(ctx, a, xs, p, y, gy):
    x, c = _losses.split(xs)
    return [_losses.input_grad(a, gy, -c * sigmoid(-c * x)), None], {}


OP = OpDef("logistic", "loss", Fusion.REDUCTION,
           _losses.labels_like_prediction("logistic", "labels of +1 or -1"),
           inputs=(2, 2), flops=_losses.per_element_flops(5), forward=forward, backward=backward,
           differentiable_inputs=(0,), task="signs",
           doc="log(1 + exp(-c*x)), labels c = +1 or -1")
