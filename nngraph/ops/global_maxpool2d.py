"""Global max pooling: y[c] = max of x[c, :, :] over all H*W positions, (C, H, W) -> (C,);
Keras' GlobalMaxPooling2D and ONNX's GlobalMaxPool (flattened).

The gradient goes to the first maximum of each plane in row-major order, as maxpool2d's
goes to the first maximum of each window, so that the two agree on a plane-sized window.
"""
import numpy as np

from . import _pool
from .base import Fusion, OpDef

shape = _pool.global_shape("global_maxpool2d")
flops = _pool.global_flops


def forward(ctx, a, xs, p):
    return xs[0].max(axis=(2, 3))


def backward(ctx, a, xs, p, y, gy):
    """argmax of the flattened plane is its first maximum; the gradient is scattered there."""
    x = xs[0]
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    arg = flat.argmax(axis=-1)[..., None]
    gx = np.zeros_like(flat, dtype=gy.dtype)
    np.put_along_axis(gx, arg, gy[..., None], axis=-1)
    return [gx.reshape(x.shape)], {}


OP = OpDef("global_maxpool2d", "layer", Fusion.REDUCTION, shape, flops=flops,
           forward=forward, backward=backward,
           doc="Maximum of each channel over all positions: (C, H, W) -> (C,).")
