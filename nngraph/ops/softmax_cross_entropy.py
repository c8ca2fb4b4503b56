"""Softmax cross-entropy on logits: log sum_k exp(x_k) - x_c.

Labels are class indices (shape (), integer) or one-hot / probability rows (shape (K,)).
"""
import numpy as np

from .base import Fusion, OpDef, ShapeError


def shape(a, shapes):
    logits, label = shapes
    if len(logits) != 1:
        raise ShapeError(f"softmax_cross_entropy expects logits of shape (classes,), got "
                         f"{'x'.join(map(str, logits)) or 'a scalar'}")
    if label not in ((), logits):
        raise ShapeError(f"labels of shape {'x'.join(map(str, label))} do not fit logits of "
                         f"shape {logits[0]}: use class indices (shape []) or one-hot rows "
                         f"(shape [{logits[0]}])")
    return ()


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _targets(label, x):
    if label.ndim == x.ndim:
        return label.astype(x.dtype)
    t = np.zeros_like(x)
    t[np.arange(len(x)), label.astype(np.int64)] = 1
    return t


def forward(ctx, a, xs, p):
    x, label = xs
    per_sample = -(_targets(label, x) * _log_softmax(x)).sum(axis=-1)
    return per_sample.mean() if a.reduction == "mean" else per_sample.sum()


def backward(ctx, a, xs, p, y, gy):
    x, label = xs
    g = np.exp(_log_softmax(x)) - _targets(label, x)
    if a.reduction == "mean":
        g = g / len(x)
    return [gy * g, None], {}


OP = OpDef("softmax_cross_entropy", "loss", Fusion.OPAQUE, shape, inputs=(2, 2),
           forward=forward, backward=backward, differentiable_inputs=(0,), task="classes",
           doc="log-softmax loss: log sum_k exp(x_k) - x_c")
