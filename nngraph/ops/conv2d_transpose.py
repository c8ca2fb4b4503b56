"""Transposed 2-D convolution (the adjoint of conv2d), NCHW:
y[f, i*sh + u, j*sw + v] += x[c, i, j] W[c, f, u, v], then cropped by the padding, plus b[f].

W has shape (in_channels, filters, kh, kw), as in PyTorch's ConvTranspose2d. Along each axis
Ho = (H - 1)*stride - 2*padding + kernel + output_padding. padding 'same' gives Ho = H*stride:
the exact adjoint of a 'same' conv2d with that stride on an input of H*stride.
"""
import math

import numpy as np

from . import _conv
from .base import Attr, Fusion, Int, IntTuple, OpDef, Padding, ParamSpec, ShapeError


def _axis(a, size, axis):
    """Output length and the (low, high) crop of the full scatter; high < 0 extends with zeros."""
    k, s, extra = a.kernel[axis], a.stride[axis], a.output_padding[axis]
    where = ("height", "width")[axis]
    if extra >= s:
        raise ShapeError(f"output_padding {extra} must be smaller than the stride {s} along "
                         f"the {where}", attr="output_padding")
    if a.padding == "same":
        if extra:
            raise ShapeError("output_padding must be 0 with padding 'same', which fixes the "
                             "output at input x stride", attr="output_padding")
        lo = max(k - s, 0) // 2
        return size * s, lo, k - s - lo
    p = 0 if a.padding == "valid" else a.padding[axis]
    out = (size - 1) * s - 2 * p + k + extra
    if out < 1:
        raise ShapeError(f"padding {p} leaves no output along the {where}: ({size} - 1)x{s} "
                         f"- 2x{p} + {k} + {extra} = {out}", attr="padding")
    return out, p, p - extra


def _geometry(a, x):
    if len(x) != 3:
        raise ShapeError(f"conv2d_transpose expects (channels, height, width), got "
                         f"{'x'.join(map(str, x)) or 'a scalar'}")
    (ho, t, b), (wo, l, r) = _axis(a, x[1], 0), _axis(a, x[2], 1)
    full = ((x[1] - 1) * a.stride[0] + a.kernel[0], (x[2] - 1) * a.stride[1] + a.kernel[1])
    buffer = (full[0] + max(-b, 0), full[1] + max(-r, 0))     # room for the zero extension
    _conv.check_elements("the windows hold", (a.filters,) + x[1:] + a.kernel, "kernel")
    _conv.check_elements("the uncropped output is", (a.filters,) + buffer, "padding")
    return (ho, wo), buffer, ((t, max(b, 0)), (l, max(r, 0)))


def shape(a, shapes):
    return (a.filters,) + _geometry(a, shapes[0])[0]


def params(a, shapes):
    c = shapes[0][0]
    kh, kw = a.kernel
    out = {"W": ParamSpec((c, a.filters, kh, kw), "glorot_uniform", "weight",
                          c * kh * kw, a.filters * kh * kw)}
    if a.use_bias:
        out["b"] = ParamSpec((a.filters,), "zeros", "bias", c * kh * kw, a.filters * kh * kw,
                             regularize=False)
    return out


def flops(a, shapes, out):
    return 2 * math.prod(shapes[0]) * a.filters * a.kernel[0] * a.kernel[1]


def forward(ctx, a, xs, p):
    x = xs[0]
    _, buffer, crops = _geometry(a, x.shape[1:])
    cols = np.tensordot(x, p["W"], axes=([1], [0])).transpose(0, 3, 1, 2, 4, 5)  # N,F,H,W,kh,kw
    y = _conv.crop2d(_conv.scatter_windows(cols, (len(x), a.filters) + buffer, a.stride), crops)
    if "b" in p:
        y = y + p["b"][None, :, None, None]
    return np.ascontiguousarray(y)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    _, _, crops = _geometry(a, x.shape[1:])
    h, w = x.shape[2:]
    gcols = _conv.windows(_conv.pad2d(gy, crops), a.kernel, a.stride)[:, :, :h, :w]
    gp = {"W": np.tensordot(x, gcols, axes=([0, 2, 3], [0, 2, 3]))}               # C,F,kh,kw
    if "b" in p:
        gp["b"] = gy.sum(axis=(0, 2, 3))
    gx = np.tensordot(gcols, p["W"], axes=([1, 4, 5], [1, 2, 3]))                  # N,H,W,C
    return [np.ascontiguousarray(gx.transpose(0, 3, 1, 2))], gp


OP = OpDef("conv2d_transpose", "layer", Fusion.ANCHOR, shape,
           attrs=(Attr("filters", Int(1), doc="number of output channels"),
                  Attr("kernel", IntTuple(2), doc="window size, n or [kh, kw]"),
                  Attr("stride", IntTuple(2), (1, 1), "upsampling step between input cells"),
                  Attr("padding", Padding(2), "valid",
                       "'valid', 'same' (output = input x stride) or a number cropped per side"),
                  Attr("output_padding", IntTuple(2, min=0), (0, 0),
                       "extra rows/columns at the bottom/right, smaller than the stride")),
           params=params, flops=flops, forward=forward, backward=backward,
           doc="Transposed 2-D convolution (adjoint of conv2d), NCHW; "
               "W is (in_channels, filters, kh, kw).")
