"""Sigmoid cross-entropy on logits x with targets t in [0, 1]:
-t log σ(x) - (1 - t) log(1 - σ(x)) = max(x, 0) - x·t + log(1 + exp(-|x|)),
summed over the features of a sample. The gradient is σ(x) - t.

The right-hand form never overflows and never takes the log of 0, whatever the logit.
"""
from . import _losses
from .base import Fusion, OpDef
from .sigmoid import sigmoid
from .softplus import softplus


def forward(ctx, a, xs, p):
    x, t = _losses.split(xs)
    return _losses.reduce(a, softplus(x) - x * t)     # softplus(x) = max(x,0) + log1p(e^-|x|)


def backward(ctx, a, xs, p, y, gy):
    x, t = _losses.split(xs)
    return [_losses.input_grad(a, gy, sigmoid(x) - t), None], {}


OP = OpDef("sigmoid_cross_entropy", "loss", Fusion.REDUCTION,
           _losses.labels_like_prediction("sigmoid_cross_entropy", "targets in [0, 1]"),
           inputs=(2, 2), flops=_losses.per_element_flops(6), forward=forward, backward=backward,
           differentiable_inputs=(0,), task="logits",
           doc="binary cross-entropy on logits: max(x,0) - x*t + log(1 + exp(-|x|))")
