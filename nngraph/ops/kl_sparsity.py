"""Sparsity penalty of sparse autoencoders: β Σ_j KL(ρ ‖ ρ̂_j) with ρ̂_j the mean activation of
hidden unit j over the batch and

    KL(ρ ‖ ρ̂) = ρ log(ρ / ρ̂) + (1 - ρ) log((1 - ρ) / (1 - ρ̂)).

One input, activations h in (0, 1) (a sigmoid layer): (units,), or any shape, every feature
being a unit. The penalty is already a batch-level quantity, so `reduction` changes nothing:
neither mean nor sum divides or multiplies it by the batch size. ρ̂ is clipped into
[1e-7, 1 - 1e-7] so that the logs stay finite; clipped units get no gradient.
"""
import math
from dataclasses import dataclass

import numpy as np

from .base import Attr, AttrError, Float, Fusion, OpDef

LOW, HIGH = 1e-7, 1 - 1e-7


@dataclass(frozen=True)
class OpenUnit:
    """A number strictly between 0 and 1 (a target activation rate)."""

    def check(self, v):
        v = Float().check(v)
        if not 0.0 < v < 1.0:
            raise AttrError(f"must be strictly between 0 and 1, got {v}", "E013")
        return v

    def schema(self):
        return {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}


def shape(a, shapes):
    return ()


def forward(ctx, a, xs, p):
    rho, q = a.rho, np.clip(xs[0].mean(axis=0), LOW, HIGH)
    kl = rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q))
    return a.beta * kl.sum()


def backward(ctx, a, xs, p, y, gy):
    h = xs[0]
    rho, mean = a.rho, h.mean(axis=0)
    q = np.clip(mean, LOW, HIGH)
    dq = a.beta * ((1 - rho) / (1 - q) - rho / q) * ((mean >= LOW) & (mean <= HIGH))
    # every sample contributes 1/batch of each unit's mean
    g = np.broadcast_to(dq * h.dtype.type(gy / len(h)), h.shape)
    return [np.ascontiguousarray(g)], {}


def flops(a, shapes, out):
    return math.prod(shapes[0])        # the batch mean; the KL terms are per batch, not sample


OP = OpDef("kl_sparsity", "loss", Fusion.REDUCTION, shape, inputs=(1, 1),
           attrs=(Attr("rho", OpenUnit(), 0.05, "target mean activation, in (0, 1)"),
                  Attr("beta", Float(0.0), 1.0, "strength of the penalty")),
           flops=flops, forward=forward, backward=backward, differentiable_inputs=(0,),
           doc="beta * sum_j KL(rho || mean activation of unit j over the batch)")
