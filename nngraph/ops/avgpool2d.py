"""2-D average pooling over NCHW inputs: y[c, i, j] = sum of the window at (i*sh, j*sw) / (kh*kw).

Padding cells count as zeros and by default the divisor is always the full window area
(PyTorch's count_include_pad=True), so every output is the same linear function of its
window and the gradient spreads evenly: gx gets gy / (kh*kw) from every window it is in.
With count_include_pad: false a window divides by the number of its cells that are not
padding (PyTorch's False, ONNX's count_include_pad=0, the Caffe/GoogLeNet average), and
gx gets gy / that count. The cpu and cuda kernels divide by the area; they decline the
other divisor, which runs this rule.
"""
import numpy as np

from . import _pool
from .base import Attr, Bool, Fusion, OpDef
from .maxpool2d import attrs


def shape(a, shapes):
    x = shapes[0]
    return (x[0],) + _pool.window(OP.name, a, x).out


def flops(a, shapes, out):
    return _pool.flops(_pool.window(OP.name, a, shapes[0]), shapes[0][0])


def _divisor(a, w, x_shape, dtype):
    """The area, or (count_include_pad false) each window's count of input cells."""
    if a.get("count_include_pad", True):
        return dtype.type(w.size[0] * w.size[1])
    ones = np.ones((1, 1) + tuple(x_shape[2:]), dtype)
    return _pool.gather(w, ones, 0.0).sum(axis=-1).reshape(w.out)


def forward(ctx, a, xs, p):
    x = xs[0]
    w = _pool.window(OP.name, a, x.shape[1:])
    s = _pool.gather(w, x, 0.0).sum(axis=-1).reshape(x.shape[:2] + w.out)
    return s / _divisor(a, w, x.shape, x.dtype)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    w = _pool.window(OP.name, a, x.shape[1:])
    area = w.size[0] * w.size[1]
    g = np.repeat((gy / _divisor(a, w, x.shape, gy.dtype))[..., None], area, axis=-1)
    return [_pool.scatter(w, g, x.shape)], {}


OP = OpDef("avgpool2d", "layer", Fusion.REDUCTION, shape,
           attrs=attrs(2) + (Attr("count_include_pad", Bool(), True,
                                  "padding cells count in the divisor (the window area); "
                                  "false divides by the input cells of each window"),),
           flops=flops,
           forward=forward, backward=backward,
           doc="2-D average pooling, NCHW; padding counts as zeros in the window average.")
