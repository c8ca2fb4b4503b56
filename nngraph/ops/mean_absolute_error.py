"""Mean absolute error, Keras' `mae` and PyTorch's L1Loss: the mean of |x_i - t_i| over each
sample's elements, then mean (or sum) over the batch. Its gradient is sign(x - t) / n, 0
where the prediction equals its target (as PyTorch takes it).
"""
import dataclasses

import numpy as np

from . import _losses
from .base import Fusion, OpDef


def forward(ctx, a, xs, p):
    x, t = _losses.split(xs)
    return _losses.reduce(a, np.abs(x - t) / _losses.per_sample(x))


def backward(ctx, a, xs, p, y, gy):
    x, t = _losses.split(xs)
    return [_losses.input_grad(a, gy, np.sign(x - t) / _losses.per_sample(x)),
            None], {}


OP = OpDef("mean_absolute_error", "loss", Fusion.REDUCTION,
           _losses.labels_like_prediction("mean_absolute_error", "targets"),
           inputs=(2, 2), flops=_losses.per_element_flops(3), forward=forward, backward=backward,
           differentiable_inputs=(0,), task="values",
           doc="mean_i |x_i - t_i| over each sample's elements (Keras' mae, PyTorch's L1Loss)")
OPS = [OP, dataclasses.replace(OP, name="mae", doc=OP.doc + " (mean_absolute_error by its short name)")]
