"""Shared arithmetic of convolution and pooling: output sizes, padding, windows (im2col).

Reference implementations only: clear numpy, not fast. 1-D ops reuse the 2-D helpers with a
height of 1.
"""
from __future__ import annotations

import math

import numpy as np

from .base import ShapeError


def out_size(size: int, k: int, s: int, padding, axis: int, what: str = "kernel",
             dilation: int = 1, axis_name: str | None = None) -> tuple[int, int, int]:
    """Output length and (pad_lo, pad_hi) along one axis. Raises ShapeError when the window
    does not fit, with the arithmetic in the message."""
    span = dilation * (k - 1) + 1
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + span - size, 0)
        return out, total // 2, total - total // 2
    p = 0 if padding == "valid" else padding[axis]
    if size + 2 * p < span:
        where = axis_name or ("height", "width")[axis]
        padded = f" ({size} + 2x{p} padding = {size + 2 * p})" if p else ""
        dilated = f" (dilated: {dilation}x({k}-1)+1)" if dilation > 1 else ""
        raise ShapeError(f"{what} {span}{dilated} is larger than the input {where} "
                         f"{size}{padded}", attr="kernel" if what == "kernel" else "size")
    return (size + 2 * p - span) // s + 1, p, p


def check_elements(what: str, dims, attr: str) -> None:
    """Refuse a working array (padded input, im2col windows) too large for one sample, as
    shape inference refuses such an output: with the arithmetic, at the attribute to blame."""
    from ..passes.infer_shapes import MAX_ACTIVATION
    n = math.prod(dims)
    if n > MAX_ACTIVATION:
        raise ShapeError(f"{what} {'x'.join(map(str, dims))} = {n:,} values per sample, more "
                         f"than the limit of {MAX_ACTIVATION:,}", attr=attr, code="E031")


def pad2d(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    (t, b), (l, r) = pads
    if not (t or b or l or r):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def windows(xp: np.ndarray, kernel, stride, dilation=(1, 1)) -> np.ndarray:
    """(N, C, H, W) padded -> (N, C, Ho, Wo, kh, kw) strided view of every window."""
    kh, kw = kernel
    dh, dw = dilation
    v = np.lib.stride_tricks.sliding_window_view(
        xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    return v[:, :, ::stride[0], ::stride[1], ::dh, ::dw]


def scatter_windows(g: np.ndarray, padded_shape, stride, dilation=(1, 1)) -> np.ndarray:
    """Adjoint of `windows`: (N, C, Ho, Wo, kh, kw) -> (N, C, Hp, Wp), overlaps summed."""
    n, c, ho, wo, kh, kw = g.shape
    out = np.zeros(padded_shape, dtype=g.dtype)
    sh, sw = stride
    dh, dw = dilation
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                j * dw:j * dw + sw * (wo - 1) + 1:sw] += g[:, :, :, :, i, j]
    return out


def crop2d(x: np.ndarray, pads) -> np.ndarray:
    (t, b), (l, r) = pads
    return x[:, :, t:x.shape[2] - b, l:x.shape[3] - r]
