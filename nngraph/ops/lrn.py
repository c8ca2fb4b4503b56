"""Local response normalization across channels, as Caffe's AlexNet, ONNX's LRN and
PyTorch's local_response_norm define it:

    s_c = bias + alpha / size * sum of x_j^2 over the `size` channels j centred on c
    y_c = x_c / s_c^beta

Channels are the first axis of each sample (C,), (C, L) or (C, H, W), ...; channels beyond
the edges count as zeros. The window runs from c - (size - 1) // 2 to c + size // 2, ONNX's
and PyTorch's (for the odd sizes allowed here both sides are alike). No parameters: the
AlexNet/GoogLeNet layer the ONNX model zoo needs, run by its reference rules.
"""
import math

import numpy as np

from .base import Attr, AttrError, Float, Fusion, Int, OpDef, ShapeError


class OddInt(Int):
    """An odd window size: ONNX and Caffe centre the window on the channel."""

    def check(self, v):
        v = super().check(v)
        if v % 2 == 0:
            raise AttrError(f"must be odd (the window is centred on the channel), got {v}",
                            "E013")
        return v


def shape(a, shapes):
    (x,) = shapes
    if len(x) == 0:
        raise ShapeError("lrn normalizes across channels: it needs (channels, ...) per "
                         "sample, got a scalar input")
    return x


def flops(a, shapes, out):
    # per value: its square, the window sum (size adds), scale and offset (2), power (~2),
    # the division (1)
    return (a.size + 6) * math.prod(out)


def _window_sum(v, size):
    """Sum over the `size` channels (axis 1) centred on each, zeros beyond the edges."""
    lo, hi = (size - 1) // 2, size // 2
    pad = [(0, 0)] * v.ndim
    pad[1] = (lo, hi)
    c = np.cumsum(np.pad(v, pad), axis=1)
    c = np.concatenate([np.zeros_like(c[:, :1]), c], axis=1)
    n = v.shape[1]
    return c[:, size:size + n] - c[:, :n]


def forward(ctx, a, xs, p):
    x = xs[0]
    s = a.bias + (a.alpha / a.size) * _window_sum(x * x, a.size)
    ctx.saved["s"] = s
    return x * s ** -a.beta


def backward(ctx, a, xs, p, y, gy):
    """dy_c/dx_c = s_c^-beta, and every y_j of a window holding channel c depends on x_c
    through s_j: dy_j/dx_c = -beta * y_j / s_j * 2 alpha / size * x_c. The windows are
    symmetric (odd size), so the sum over j whose window holds c is the same window sum."""
    x = xs[0]
    s = ctx.saved["s"] if "s" in ctx.saved else \
        a.bias + (a.alpha / a.size) * _window_sum(x * x, a.size)
    t = gy * y / s
    gx = gy * s ** -a.beta - (2 * a.alpha * a.beta / a.size) * x * _window_sum(t, a.size)
    return [gx], {}


OP = OpDef("lrn", "layer", Fusion.REDUCTION, shape,
           attrs=(Attr("size", OddInt(1, 1 << 16), doc="channels in each window (odd)"),
                  Attr("alpha", Float(0.0), 1e-4, "scale of the window's sum of squares, "
                       "divided by size"),
                  Attr("beta", Float(0.0), 0.75, "exponent of the normalizer"),
                  Attr("bias", Float(0.0, exclusive_min=True), 1.0,
                       "k, added to the scaled sum before the power")),
           flops=flops, forward=forward, backward=backward,
           doc="Local response normalization across channels: "
               "y = x / (bias + alpha/size * sum of x^2 over size channels)^beta.")
