"""2-D convolution over NCHW inputs; W has shape (filters, in_channels, kh, kw)."""
import math

import numpy as np

from . import _conv
from .base import Attr, Fusion, Int, IntTuple, OpDef, Padding, ParamSpec, ShapeError


def _geometry(a, x):
    if len(x) != 3:
        raise ShapeError(f"conv2d expects (channels, height, width), got "
                         f"{'x'.join(map(str, x)) or 'a scalar'}")
    c, h, w = x
    ho, pt, pb = _conv.out_size(h, a.kernel[0], a.stride[0], a.padding, 0, dilation=a.dilation[0])
    wo, pl, pr = _conv.out_size(w, a.kernel[1], a.stride[1], a.padding, 1, dilation=a.dilation[1])
    _conv.check_elements("the padded input is", (c, h + pt + pb, w + pl + pr), "padding")
    _conv.check_elements("the windows hold", (c, ho, wo) + a.kernel, "kernel")
    return c, ho, wo, ((pt, pb), (pl, pr))


def shape(a, shapes):
    _, ho, wo, _ = _geometry(a, shapes[0])
    return (a.filters, ho, wo)


def params(a, shapes):
    c = shapes[0][0]
    kh, kw = a.kernel
    out = {"W": ParamSpec((a.filters, c, kh, kw), "glorot_uniform", "weight",
                          c * kh * kw, a.filters * kh * kw)}
    if a.use_bias:
        out["b"] = ParamSpec((a.filters,), "zeros", "bias", c * kh * kw, a.filters * kh * kw,
                             regularize=False)
    return out


def flops(a, shapes, out):
    return 2 * shapes[0][0] * a.kernel[0] * a.kernel[1] * math.prod(out)


def forward(ctx, a, xs, p):
    x = xs[0]
    c, ho, wo, pads = _geometry(a, x.shape[1:])
    cols = _conv.windows(_conv.pad2d(x, pads), a.kernel, a.stride, a.dilation)  # N,C,Ho,Wo,kh,kw
    ctx.saved["pads"] = pads
    y = np.tensordot(cols, p["W"], axes=([1, 4, 5], [1, 2, 3]))                   # N,Ho,Wo,F
    y = y.transpose(0, 3, 1, 2)
    if "b" in p:
        y = y + p["b"][None, :, None, None]
    return np.ascontiguousarray(y)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    pads = ctx.saved["pads"]
    xp = _conv.pad2d(x, pads)
    cols = _conv.windows(xp, a.kernel, a.stride, a.dilation)
    gp = {"W": np.tensordot(gy, cols, axes=([0, 2, 3], [0, 2, 3]))}               # F,C,kh,kw
    if "b" in p:
        gp["b"] = gy.sum(axis=(0, 2, 3))
    gcols = np.tensordot(gy, p["W"], axes=([1], [0]))                              # N,Ho,Wo,C,kh,kw
    gxp = _conv.scatter_windows(gcols.transpose(0, 3, 1, 2, 4, 5), xp.shape, a.stride, a.dilation)
    return [_conv.crop2d(gxp, pads)], gp


OP = OpDef("conv2d", "layer", Fusion.ANCHOR, shape,
           attrs=(Attr("filters", Int(1), doc="number of output channels"),
                  Attr("kernel", IntTuple(2), doc="window size, n or [kh, kw]"),
                  Attr("stride", IntTuple(2), (1, 1), "step between windows"),
                  Attr("padding", Padding(2), "valid", "'valid', 'same' or a number"),
                  Attr("dilation", IntTuple(2), (1, 1), "spacing between kernel taps")),
           params=params, flops=flops, forward=forward, backward=backward,
           doc="2-D convolution (cross-correlation), NCHW.")
