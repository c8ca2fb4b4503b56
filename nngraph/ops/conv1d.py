"""1-D convolution over (C, L) inputs: y[f, i] = b[f] + sum_{c,u} W[f, c, u] x[c, i*s + u*d].

W has shape (filters, in_channels, k), as in PyTorch's Conv1d. The reference rules are
conv2d's over a height of 1.
"""
import math

import numpy as np

from . import _conv
from .base import Attr, Fusion, Int, IntTuple, OpDef, Padding, ParamSpec, ShapeError


def _geometry(a, x):
    if len(x) != 2:
        raise ShapeError(f"conv1d expects (channels, length), got "
                         f"{'x'.join(map(str, x)) or 'a scalar'}")
    lo, pl, pr = _conv.out_size(x[1], a.kernel[0], a.stride[0], a.padding, 0,
                                dilation=a.dilation[0], axis_name="length")
    _conv.check_elements("the padded input is", (x[0], x[1] + pl + pr), "padding")
    _conv.check_elements("the windows hold", (x[0], lo) + a.kernel, "kernel")
    return lo, ((0, 0), (pl, pr))


def shape(a, shapes):
    return (a.filters, _geometry(a, shapes[0])[0])


def params(a, shapes):
    c, k = shapes[0][0], a.kernel[0]
    out = {"W": ParamSpec((a.filters, c, k), "glorot_uniform", "weight", c * k, a.filters * k)}
    if a.use_bias:
        out["b"] = ParamSpec((a.filters,), "zeros", "bias", c * k, a.filters * k,
                             regularize=False)
    return out


def flops(a, shapes, out):
    return 2 * shapes[0][0] * a.kernel[0] * math.prod(out)


def _cols(a, x, pads):
    """(N, C, L) -> padded (N, C, 1, Lp) and its windows (N, C, 1, Lo, 1, k)."""
    xp = _conv.pad2d(x[:, :, None, :], pads)
    return xp, _conv.windows(xp, (1, a.kernel[0]), (1, a.stride[0]), (1, a.dilation[0]))


def forward(ctx, a, xs, p):
    x = xs[0]
    _, pads = _geometry(a, x.shape[1:])
    _, cols = _cols(a, x, pads)
    y = np.tensordot(cols[:, :, 0, :, 0, :], p["W"], axes=([1, 3], [1, 2]))      # N,Lo,F
    y = y.transpose(0, 2, 1)
    if "b" in p:
        y = y + p["b"][None, :, None]
    return np.ascontiguousarray(y)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    _, pads = _geometry(a, x.shape[1:])
    xp, cols = _cols(a, x, pads)
    gp = {"W": np.tensordot(gy, cols[:, :, 0, :, 0, :], axes=([0, 2], [0, 2]))}    # F,C,k
    if "b" in p:
        gp["b"] = gy.sum(axis=(0, 2))
    gcols = np.tensordot(gy, p["W"], axes=([1], [0]))                              # N,Lo,C,k
    gcols = gcols.transpose(0, 2, 1, 3)[:, :, None, :, None, :]
    gxp = _conv.scatter_windows(gcols, xp.shape, (1, a.stride[0]), (1, a.dilation[0]))
    return [_conv.crop2d(gxp, pads)[:, :, 0, :]], gp


OP = OpDef("conv1d", "layer", Fusion.ANCHOR, shape,
           attrs=(Attr("filters", Int(1), doc="number of output channels"),
                  Attr("kernel", IntTuple(1), doc="window length"),
                  Attr("stride", IntTuple(1), (1,), "step between windows"),
                  Attr("padding", Padding(1), "valid", "'valid', 'same' or a number"),
                  Attr("dilation", IntTuple(1), (1,), "spacing between kernel taps")),
           params=params, flops=flops, forward=forward, backward=backward,
           doc="1-D convolution (cross-correlation) over (channels, length).")
