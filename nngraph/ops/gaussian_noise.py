"""Additive Gaussian noise: in training y = x + e, e ~ N(0, stddev^2) drawn afresh at each
step (the corruption of a denoising autoencoder, or a regularizer); in evaluation y = x.

The noise does not depend on x, so the gradient passes through unchanged.
"""
from .. import random_stream
from .base import Attr, Float, Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    x = xs[0]
    if not ctx.training:
        return x
    # the counter-based stream of this node and step, which the CPU backend's kernels
    # draw from too (nngraph/random_stream.py)
    noise = random_stream.normal(random_stream.key_of(ctx.rng),
                                 random_stream.counters(x.shape), a.stddev)
    return x + noise.astype(x.dtype)


def backward(ctx, a, xs, p, y, gy):
    return [gy], {}


OP = OpDef("gaussian_noise", "noise", Fusion.ELEMWISE, same_shape,
           attrs=(Attr("stddev", Float(0.0), 0.1, "standard deviation of the added noise"),),
           flops=elementwise_flops, forward=forward, backward=backward,
           doc="Adds N(0, stddev^2) noise in training; identity in evaluation.")
