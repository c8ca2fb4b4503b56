"""Mean squared error, Keras' and PyTorch's `mse`: the mean of (x_i - t_i)² over each
sample's elements, then mean (or sum) over the batch. With `reduction: mean` this is the
mean over every element, as torch.nn.MSELoss computes it. Compare squared_error, the half
*sum* of squares of classic backprop, whose gradient is x - t.
"""
import dataclasses

from . import _losses
from .base import Fusion, OpDef


def forward(ctx, a, xs, p):
    x, t = _losses.split(xs)
    return _losses.reduce(a, (x - t) ** 2 / _losses.per_sample(x))


def backward(ctx, a, xs, p, y, gy):
    x, t = _losses.split(xs)
    return [_losses.input_grad(a, gy, (x - t) * (2 / _losses.per_sample(x))), None], {}


OP = OpDef("mean_squared_error", "loss", Fusion.REDUCTION,
           _losses.labels_like_prediction("mean_squared_error", "targets"),
           inputs=(2, 2), flops=_losses.per_element_flops(3), forward=forward, backward=backward,
           differentiable_inputs=(0,), task="values",
           doc="mean_i (x_i - t_i)^2 over each sample's elements (Keras' and PyTorch's mse)")
OPS = [OP, dataclasses.replace(OP, name="mse", doc=OP.doc + " (mean_squared_error by its short name)")]
