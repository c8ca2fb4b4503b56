"""Window geometry shared by the pooling ops (maxpool1d, maxpool2d, avgpool2d).

A 1-D pool is a 2-D pool over a height of 1, so everything here works on NCHW arrays and
lifts (N, C, L) to (N, C, 1, L) on the way in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _conv
from .base import ShapeError

LAYOUTS = {1: "(channels, length)", 2: "(channels, height, width)"}
AXES = {1: ("length",), 2: ("height", "width")}


def show(shape) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def check_rank(name: str, x: tuple, spatial: int):
    if len(x) != spatial + 1:
        raise ShapeError(f"{name} expects {LAYOUTS[spatial]}, got {show(x)}")


def global_shape(name: str):
    """The shape rule of a global pool over the spatial plane: (C, H, W) -> (C,)."""
    def shape(a, shapes):
        check_rank(name, shapes[0], 2)
        return (shapes[0][0],)
    return shape


def global_flops(a, shapes, out):
    """A global pool reads every input element once."""
    return math.prod(shapes[0])


@dataclass(frozen=True)
class Window:
    size: tuple          # (kh, kw), kh = 1 for 1-D pools
    stride: tuple
    pads: tuple          # ((top, bottom), (left, right))
    out: tuple           # spatial output shape, in the op's own rank


def window(name: str, a, x: tuple) -> Window:
    """Geometry of a pool with attributes size/stride/padding over x = (C, *spatial)."""
    n = len(a.size)
    check_rank(name, x, n)
    stride = a.stride or a.size
    outs, pads = [], []
    for axis, (length, k, s) in enumerate(zip(x[1:], a.size, stride)):
        if isinstance(a.padding, tuple) and a.padding[axis] >= k:
            # such a window could cover nothing but padding: -inf for a max, 0 for an average
            raise ShapeError(f"padding {a.padding[axis]} must be smaller than the window "
                             f"size {k} along the {AXES[n][axis]}", attr="padding")
        o, lo, hi = _conv.out_size(length, k, s, a.padding, axis, what="window",
                                   axis_name=AXES[n][axis])
        outs.append(o)
        pads.append((lo, hi))
    padded = tuple(length + lo + hi for length, (lo, hi) in zip(x[1:], pads))
    _conv.check_elements("the padded input is", (x[0],) + padded, "padding")
    _conv.check_elements("the windows hold", (x[0],) + tuple(outs) + tuple(a.size), "size")
    lift = 2 - n
    return Window((1,) * lift + tuple(a.size), (1,) * lift + tuple(stride),
                  ((0, 0),) * lift + tuple(pads), tuple(outs))


def gather(w: Window, x: np.ndarray, fill: float) -> np.ndarray:
    """(N, C, *spatial) -> (N, C, Ho, Wo, kh*kw): every window's values, padding = `fill`."""
    x4 = x.reshape(x.shape[:2] + (1,) * (4 - x.ndim) + x.shape[2:])
    cols = _conv.windows(_conv.pad2d(x4, w.pads, fill), w.size, w.stride)
    return cols.reshape(cols.shape[:4] + (-1,))


def scatter(w: Window, g: np.ndarray, x_shape: tuple) -> np.ndarray:
    """Adjoint of `gather`: (N, C, Ho, Wo, kh*kw) -> gradient of shape `x_shape`."""
    n, c = x_shape[:2]
    h, wd = (1,) * (4 - len(x_shape)) + tuple(x_shape[2:])
    (t, b), (l, r) = w.pads
    g6 = g.reshape(g.shape[:4] + w.size)
    gp = _conv.scatter_windows(g6, (n, c, h + t + b, wd + l + r), w.stride)
    return _conv.crop2d(gp, w.pads).reshape(x_shape)


def flops(w: Window, channels: int) -> int:
    """One comparison or addition per window element, per output."""
    count = channels
    for o in w.out:
        count *= o
    return count * w.size[0] * w.size[1]
