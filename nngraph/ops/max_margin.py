"""Multi-class max-margin (Crammer-Singer hinge) loss on class scores x with label c:
max(0, max_{k≠c} (x_k + m) - x_c) per sample, margin m.

The gradient is +1 at the strongest rival class and -1 at the true class when the margin is
violated, 0 otherwise. Labels are class indices (shape [], integer).
"""
import numpy as np

from . import _losses
from .base import Attr, Float, Fusion, OpDef, ShapeError


def shape(a, shapes):
    x, c = (tuple(s) for s in shapes)
    if len(x) != 1 or x[0] < 2:
        raise ShapeError(f"max_margin expects scores of shape [classes] with at least 2 "
                         f"classes, got {list(x)}")
    if c != ():
        raise ShapeError(f"labels of shape {list(c)} do not fit scores of shape {list(x)}: "
                         "max_margin takes one class index per sample (shape [], dtype int64)")
    return ()


def _violation(a, x, c):
    """Per sample: the strongest rival class k and max_k(x_k + m) - x_c."""
    rows = np.arange(len(x))
    rivals = x + a.margin
    rivals[rows, c] = -np.inf          # the true class is no rival of itself
    k = rivals.argmax(axis=1)
    return rows, k, rivals[rows, k] - x[rows, c]


def forward(ctx, a, xs, p):
    x, c = xs[0], xs[1].astype(np.int64)
    _, _, excess = _violation(a, x, c)
    return _losses.reduce(a, np.maximum(excess, 0))


def backward(ctx, a, xs, p, y, gy):
    x, c = xs[0], xs[1].astype(np.int64)
    rows, k, excess = _violation(a, x, c)
    active = (excess > 0).astype(x.dtype)
    g = np.zeros_like(x)
    g[rows, k] += active
    g[rows, c] -= active
    return [_losses.input_grad(a, gy, g), None], {}


OP = OpDef("max_margin", "loss", Fusion.REDUCTION, shape, inputs=(2, 2),
           attrs=(Attr("margin", Float(0.0), 1.0, "the margin m"),),
           flops=_losses.per_element_flops(2), forward=forward, backward=backward,
           differentiable_inputs=(0,), int_inputs=(1,),
           task="classes",
           doc="max(0, max_{k != c}(x_k + m) - x_c), label c a class index")
