"""Pictures of generated images without a plotting library: a grid of images as an array,
and a minimal PNG writer (zlib, 8-bit grayscale or RGB), used by `nngraph sample`.

    >>> write_png("grid.png", grid(images, (1, 28, 28)))
"""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from .errors import DataError


def image_shape(shape: tuple) -> tuple:
    """(channels, height, width) of one sample of `shape`: (C, H, W) with 1 or 3 channels
    as it is, (H, W) as one channel, and a flat vector of a square's size (784 -> 28 x 28)."""
    shape = tuple(shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        return shape
    if len(shape) == 2:
        return (1,) + shape
    if len(shape) == 1 and math.isqrt(shape[0]) ** 2 == shape[0]:
        side = math.isqrt(shape[0])
        return (1, side, side)
    raise DataError(f"cannot draw outputs of shape {list(shape)} as images: a grid needs a "
                    "square number of values, (H, W), or (C, H, W) with 1 or 3 channels")


def grid(images: np.ndarray, shape: tuple, pad: int = 1) -> np.ndarray:
    """The images (n, ...) tiled into ceil(sqrt(n)) columns with `pad` black pixels
    around each, as uint8 (H, W) or (H, W, 3). Values in [0, 1] are drawn as they are;
    others are stretched from their minimum to their maximum."""
    c, h, w = image_shape(shape)
    x = np.asarray(images, dtype=np.float64).reshape(len(images), c, h, w)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        x = (x - lo) / (hi - lo or 1.0)
    n = len(x)
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    out = np.zeros((c, rows * (h + pad) + pad, cols * (w + pad) + pad))
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        out[:, top:top + h, left:left + w] = x[i]
    out = np.round(out * 255).astype(np.uint8)
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def write_png(path: str, pixels: np.ndarray) -> str:
    """Write uint8 pixels (H, W) grayscale or (H, W, 3) RGB as a PNG file; returns path."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    color = 0 if pixels.ndim == 2 else 2
    rows = pixels.reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return path
