"""Inverted dropout: in training y = x * m / (1 - rate) with m = 1 with probability 1 - rate,
else 0, drawn afresh at each step; in evaluation y = x.

Scaling the kept values by 1 / (1 - rate) keeps E[y] = x, so the evaluation network is the
plain one. The mask is saved for backward, which applies the same scaled mask to the gradient.
"""
import numpy as np

from .. import random_stream
from .base import Attr, Float, Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    x = xs[0]
    if not ctx.training:
        return x
    # the counter-based stream of this node and step, which the CPU backend's kernels
    # draw from too (nngraph/random_stream.py)
    mask = random_stream.uniform(random_stream.key_of(ctx.rng),
                                 random_stream.counters(x.shape)) >= a.rate
    ctx.saved["mask"] = mask
    return x * mask / np.asarray(1 - a.rate, dtype=x.dtype)


def backward(ctx, a, xs, p, y, gy):
    if not ctx.training:
        return [gy], {}
    return [gy * ctx.saved["mask"] / np.asarray(1 - a.rate, dtype=gy.dtype)], {}


OP = OpDef("dropout", "noise", Fusion.ELEMWISE, same_shape,
           attrs=(Attr("rate", Float(0.0, 1.0, exclusive_max=True), 0.5,
                       "probability of dropping each value in training, from 0 up to (not "
                       "including) 1"),),
           flops=elementwise_flops, forward=forward, backward=backward,
           doc="Inverted dropout: in training zeroes each value with probability rate and "
               "scales the rest by 1 / (1 - rate); identity in evaluation.")
