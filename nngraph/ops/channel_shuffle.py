"""Channel shuffle (ShuffleNet, Zhang et al. 2017; torch.nn.ChannelShuffle): the C channels,
the first axis of each sample ((C,), (C, L), (C, H, W), ...), viewed as (groups, C / groups,
rest), the two leading axes swapped, and flattened back:

    y[j * groups + i] = x[i * (C / groups) + j]

so that the next grouped convolution sees channels from every group of the previous one.
No parameters; the backward is the inverse permutation (the shuffle with C / groups groups).
"""
import numpy as np

from .base import Attr, Fusion, Int, OpDef, ShapeError


def shape(a, shapes):
    (x,) = shapes
    if len(x) == 0:
        raise ShapeError("channel_shuffle permutes channels: it needs (channels, ...) per "
                         "sample, got a scalar input")
    if x[0] % a.groups:
        raise ShapeError(f"groups={a.groups} must divide the input channels ({x[0]})",
                         attr="groups")
    return x


def shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, ...) -> (N, C, ...) with channel j * groups + i taken from i * (C/groups) + j."""
    n, c = x.shape[:2]
    v = x.reshape((n, groups, c // groups) + x.shape[2:])
    return np.ascontiguousarray(v.swapaxes(1, 2)).reshape(x.shape)


def forward(ctx, a, xs, p):
    return shuffle(xs[0], a.groups)


def backward(ctx, a, xs, p, y, gy):
    """The inverse of a shuffle with g groups of C/g channels is the shuffle with C/g."""
    return [shuffle(gy, gy.shape[1] // a.groups)], {}


OP = OpDef("channel_shuffle", "layer", Fusion.INJECTIVE, shape,
           attrs=(Attr("groups", Int(1), doc="channel groups to interleave; must divide "
                       "the channels"),),
           forward=forward, backward=backward,
           doc="ShuffleNet's channel shuffle: view channels as (groups, C/groups), "
               "transpose, flatten.")
