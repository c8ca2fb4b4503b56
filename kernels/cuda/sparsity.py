"""The KL sparsity penalty of sparse autoencoders on the GPU, as nngraph/ops/kl_sparsity.py:
beta * sum_j KL(rho || mean_j) of each unit's mean activation over the batch and, in
training, its gradient, which reaches every sample: 1/batch of each unit's d penalty / d
mean_j.

A thread per unit sums its column of the batch (neighbouring threads read neighbouring
addresses, as reduce.column_sums does), clips the mean into [low, high], writes its KL term
and turns the mean into the unit's gradient; reduce.total sums the terms in one block, and
a thread per value writes the units' gradients to every sample. Only the total is read
back. Clipped units get no gradient, as in the reference rule."""
from __future__ import annotations

import math

from numba import cuda

from .launch import grid, per_dtype
from .reduce import total


def _units_kernel(dtype):
    @cuda.jit
    def kl_units(h, q, terms, rho, low, high, scale):
        """Unit j: terms[j] = KL(rho || clipped mean_j), q[j] = scale * d KL / d mean_j
        (0 where the mean was clipped)."""
        for j in range(cuda.grid(1), q.shape[0], cuda.gridsize(1)):
            acc = dtype(0)
            for i in range(h.shape[0]):
                acc += h[i, j]
            mean = dtype(acc / h.shape[0])
            one = dtype(1)
            p = low if mean < low else high if mean > high else mean
            terms[j] = rho * math.log(rho / p) + (one - rho) * math.log((one - rho) / (one - p))
            inside = mean >= low and mean <= high
            q[j] = scale * ((one - rho) / (one - p) - rho / p) if inside else dtype(0)
    return kl_units


units_kernel = per_dtype(_units_kernel)


@cuda.jit
def _to_every_sample(q, g):
    """g[i, j] = q[j] for the flat g (N * units)."""
    for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        g[i] = q[i % q.shape[0]]


def kl_sparsity_loss(h, g, q, terms, out, rho, beta, weight, low, high, stream=0) -> float:
    """beta * sum_j KL(rho || mean_j) of activations h (N, units...), read back as the one
    number a step returns; its gradient times `weight` into g (shaped as h; None for the
    penalty alone). q and terms (units,) and out (1,) are device scratch; low and high
    the clipping bounds of the means."""
    h = h.reshape(h.shape[0], -1)
    n, units = h.shape
    dt = h.dtype.type
    units_kernel(h.dtype)[grid(units) + (stream,)](
        h, q, terms, dt(rho), dt(low), dt(high), dt(weight * beta / n))
    total(terms, out, beta, stream)
    if g is not None:
        _to_every_sample[grid(g.size) + (stream,)](q, g.reshape(g.size))
    return float(out.copy_to_host()[0])
