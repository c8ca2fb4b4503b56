"""The reparameterization trick of variational autoencoders (Kingma and Welling, 2014):

    z = mean + exp(log_var / 2) * eps,    eps ~ N(0, I)

Inputs [mean, log_var] of one shape, the two heads of an encoder. Sampling eps apart from
the inputs makes z a differentiable function of them: dz/dmean = 1 and
dz/dlog_var = exp(log_var / 2) * eps / 2 = (z - mean) / 2.

eps comes from the counter-based stream that dropout and gaussian_noise draw from
(nngraph/random_stream.py): in training a fresh draw per step and node, the same on every
backend. Evaluation and predict sample too, as a VAE's reconstruction is defined with a
sampled code; their generator is the fixed one a run without a step gives (seed words
[0]), so that evaluate and predict of one batch give the same numbers on every call and
backend. `deterministic: true` returns the mean instead (the code a trained VAE's encoder
assigns to an input).
"""
import math

import numpy as np

from .. import random_stream
from .base import Attr, Bool, Fusion, OpDef, ShapeError


def shape(a, shapes):
    m, v = (tuple(s) for s in shapes)
    if m != v:
        raise ShapeError(f"mean of shape {list(m)} and log_var of shape {list(v)} differ: "
                         "reparameterize needs [mean, log_var] of the same shape")
    return m


def draw(ctx, shape_, dtype) -> np.ndarray:
    """eps for a batch of `shape_`, rounded once to `dtype`: the node's stream."""
    return random_stream.normal(random_stream.key_of(ctx.rng),
                                random_stream.counters(shape_)).astype(dtype)


def forward(ctx, a, xs, p):
    mean, log_var = xs
    if a.deterministic:
        return mean.copy()
    eps = draw(ctx, mean.shape, mean.dtype)
    std = np.exp(log_var * log_var.dtype.type(0.5))
    ctx.saved["eps_std"] = eps * std            # what backward needs: dz/dlog_var = eps*std/2
    return mean + eps * std


def backward(ctx, a, xs, p, y, gy):
    mean, log_var = xs
    if a.deterministic:
        return [gy, np.zeros_like(log_var)], {}
    eps_std = ctx.saved.get("eps_std")
    if eps_std is None:                         # a backward without this context's forward
        eps_std = draw(ctx, mean.shape, mean.dtype) * np.exp(log_var * log_var.dtype.type(0.5))
    return [gy, gy * eps_std * gy.dtype.type(0.5)], {}


def flops(a, shapes, out):
    return 0 if a.deterministic else 4 * math.prod(out)     # exp, two products and a sum


OP = OpDef("reparameterize", "noise", Fusion.ELEMWISE, shape, inputs=(2, 2),
           attrs=(Attr("deterministic", Bool(), False,
                       "return the mean instead of a sample, in training and evaluation"),),
           flops=flops, forward=forward, backward=backward, takes_activation=False,
           doc="z = mean + exp(log_var / 2) * eps, eps ~ N(0, I) from the model's random "
               "stream (in: [mean, log_var]); the mean itself when deterministic.")
