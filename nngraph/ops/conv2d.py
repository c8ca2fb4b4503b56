"""2-D convolution over NCHW inputs; W has shape (filters, in_channels / groups, kh, kw).

With `groups` > 1 the channels split into that many independent convolutions (AlexNet's two
towers, ShuffleNet, depthwise convolutions with groups = in_channels), as ONNX's Conv and
PyTorch's conv2d do. The reference rules run the ungrouped rule per group on channel slices;
groups=1 takes exactly the ungrouped path, so existing specs compute the same numbers."""
import math

import numpy as np

from . import _conv
from .base import Attr, Fusion, Int, IntTuple, OpDef, Padding, ParamSpec, ShapeError


def _groups(a) -> int:
    """The number of groups; 1 where the attributes predate the attribute (built by hand)."""
    return a.get("groups", 1)


def _geometry(a, x):
    if len(x) != 3:
        raise ShapeError(f"conv2d expects (channels, height, width), got "
                         f"{'x'.join(map(str, x)) or 'a scalar'}")
    c, h, w = x
    g = _groups(a)
    if c % g or a.filters % g:
        raise ShapeError(f"groups={g} must divide both the input channels ({c}) and filters "
                         f"({a.filters})", attr="groups")
    ho, pt, pb = _conv.out_size(h, a.kernel[0], a.stride[0], a.padding, 0, dilation=a.dilation[0])
    wo, pl, pr = _conv.out_size(w, a.kernel[1], a.stride[1], a.padding, 1, dilation=a.dilation[1])
    _conv.check_elements("the padded input is", (c, h + pt + pb, w + pl + pr), "padding")
    _conv.check_elements("the windows hold", (c, ho, wo) + a.kernel, "kernel")
    return c, ho, wo, ((pt, pb), (pl, pr))


def shape(a, shapes):
    _, ho, wo, _ = _geometry(a, shapes[0])
    return (a.filters, ho, wo)


def params(a, shapes):
    c = shapes[0][0] // _groups(a)              # each filter sees its group's channels only
    kh, kw = a.kernel
    fan_out = a.filters // _groups(a) * kh * kw
    out = {"W": ParamSpec((a.filters, c, kh, kw), "glorot_uniform", "weight",
                          c * kh * kw, fan_out)}
    if a.use_bias:
        out["b"] = ParamSpec((a.filters,), "zeros", "bias", c * kh * kw, fan_out,
                             regularize=False)
    return out


def flops(a, shapes, out):
    return 2 * (shapes[0][0] // _groups(a)) * a.kernel[0] * a.kernel[1] * math.prod(out)


def _forward1(a, xp, w):
    """One ungrouped convolution of the padded input xp, without bias: N,F,Ho,Wo."""
    cols = _conv.windows(xp, a.kernel, a.stride, a.dilation)                      # N,C,Ho,Wo,kh,kw
    y = np.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3]))                        # N,Ho,Wo,F
    return y.transpose(0, 3, 1, 2)


def _backward1(a, xp, w, gy):
    """Gradients of one ungrouped convolution: (d padded input, dW)."""
    cols = _conv.windows(xp, a.kernel, a.stride, a.dilation)
    gw = np.tensordot(gy, cols, axes=([0, 2, 3], [0, 2, 3]))                      # F,C,kh,kw
    gcols = np.tensordot(gy, w, axes=([1], [0]))                                  # N,Ho,Wo,C,kh,kw
    gxp = _conv.scatter_windows(gcols.transpose(0, 3, 1, 2, 4, 5), xp.shape, a.stride, a.dilation)
    return gxp, gw


def _slices(a, c):
    """(channel slice, filter slice) of every group."""
    g = _groups(a)
    cg, fg = c // g, a.filters // g
    return [(slice(i * cg, (i + 1) * cg), slice(i * fg, (i + 1) * fg)) for i in range(g)]


def forward(ctx, a, xs, p):
    x = xs[0]
    c, ho, wo, pads = _geometry(a, x.shape[1:])
    ctx.saved["pads"] = pads
    xp = _conv.pad2d(x, pads)
    if _groups(a) == 1:
        y = _forward1(a, xp, p["W"])
    else:
        y = np.concatenate([_forward1(a, xp[:, cs], p["W"][fs]) for cs, fs in _slices(a, c)],
                           axis=1)
    if "b" in p:
        y = y + p["b"][None, :, None, None]
    return np.ascontiguousarray(y)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    pads = ctx.saved["pads"]
    xp = _conv.pad2d(x, pads)
    if _groups(a) == 1:
        gxp, gw = _backward1(a, xp, p["W"], gy)
    else:
        parts = [_backward1(a, xp[:, cs], p["W"][fs], gy[:, fs])
                 for cs, fs in _slices(a, x.shape[1])]
        gxp = np.concatenate([gx for gx, _ in parts], axis=1)
        gw = np.concatenate([g for _, g in parts], axis=0)
    gp = {"W": gw}
    if "b" in p:
        gp["b"] = gy.sum(axis=(0, 2, 3))
    return [_conv.crop2d(gxp, pads)], gp


OP = OpDef("conv2d", "layer", Fusion.ANCHOR, shape,
           attrs=(Attr("filters", Int(1), doc="number of output channels"),
                  Attr("kernel", IntTuple(2), doc="window size, n or [kh, kw]"),
                  Attr("stride", IntTuple(2), (1, 1), "step between windows"),
                  Attr("padding", Padding(2), "valid", "'valid', 'same' or a number"),
                  Attr("dilation", IntTuple(2), (1, 1), "spacing between kernel taps"),
                  Attr("groups", Int(1), 1, "independent channel groups; must divide the "
                       "input channels and filters (in_channels = depthwise)")),
           params=params, flops=flops, forward=forward, backward=backward,
           doc="2-D convolution (cross-correlation), NCHW.")
