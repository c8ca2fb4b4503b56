"""Optimizer updates over the flat parameter buffer on the GPU: one launch per step for the
whole network, one thread per parameter value (the formulas of kernels/cpu/optim.py).

Parameter k is p[seg_start[k]:seg_end[k]] and learns at lr * seg_lr[k] (0: frozen). A
thread finds its value's segment by binary search over seg_end (a network has tens of
parameters, so a few steps), which keeps the launch to one whatever the layout. The
scalars come in p's dtype and seg_lr in p's dtype too, so float32 stays float32. Slots
that decay are not flushed to zero below the smallest normal as on the CPU, where
subnormal numbers slow the cores down: NVIDIA GPUs' fused multiply-add units take them at
full speed.
"""
from __future__ import annotations

import math

from numba import cuda

from .launch import THREADS, blocks


@cuda.jit(device=True)
def _segment(i, seg_end):
    """The index of the segment holding flat position i (seg_end ascending)."""
    lo, hi = 0, seg_end.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if i < seg_end[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@cuda.jit(device=True)
def _lr_mult(i, p, seg_start, seg_end, seg_lr):
    """The learning-rate multiplier of flat position i: 0 where nothing learns (past the
    end, a gap between segments, a frozen parameter)."""
    if i >= p.shape[0]:
        return 0
    k = _segment(i, seg_end)
    return 0 if i < seg_start[k] else seg_lr[k]


@cuda.jit
def _sgd(p, g, v, seg_start, seg_end, seg_lr, lr, momentum, nesterov):
    i = cuda.grid(1)
    mult = _lr_mult(i, p, seg_start, seg_end, seg_lr)
    if mult == 0:                       # past the end, a gap, or a frozen parameter
        return
    rate = lr * mult
    if momentum == 0:
        p[i] -= rate * g[i]
        return
    vi = momentum * v[i] - rate * g[i]
    v[i] = vi
    p[i] += momentum * vi - rate * g[i] if nesterov else vi


@cuda.jit
def _rmsprop(p, g, s, seg_start, seg_end, seg_lr, lr, rho, eps):
    i = cuda.grid(1)
    mult = _lr_mult(i, p, seg_start, seg_end, seg_lr)
    if mult == 0:                       # past the end, a gap, or a frozen parameter
        return
    rate = lr * mult
    gi = g[i]
    si = rho * s[i] + (1 - rho) * gi * gi
    s[i] = si
    p[i] -= rate * gi / (math.sqrt(si) + eps)


@cuda.jit
def _adagrad(p, g, s, seg_start, seg_end, seg_lr, lr, eps):
    i = cuda.grid(1)
    mult = _lr_mult(i, p, seg_start, seg_end, seg_lr)
    if mult == 0:                       # past the end, a gap, or a frozen parameter
        return
    rate = lr * mult
    gi = g[i]
    si = s[i] + gi * gi
    s[i] = si
    p[i] -= rate * gi / (math.sqrt(si) + eps)


@cuda.jit
def _adam(p, g, m, v, seg_start, seg_end, seg_lr, lr, beta1, beta2, eps, c1, c2):
    i = cuda.grid(1)
    mult = _lr_mult(i, p, seg_start, seg_end, seg_lr)
    if mult == 0:                       # past the end, a gap, or a frozen parameter
        return
    rate = lr * mult
    gi = g[i]
    mi = beta1 * m[i] + (1 - beta1) * gi
    vi = beta2 * v[i] + (1 - beta2) * gi * gi
    m[i] = mi
    v[i] = vi
    p[i] -= rate * (mi / c1) / (math.sqrt(vi / c2) + eps)


def _launch(kernel, p, stream, *args):
    if p.shape[0]:
        kernel[blocks(p.shape[0]), THREADS, stream](p, *args)


def sgd_update(p, g, v, seg_start, seg_end, seg_lr, lr, momentum, nesterov, stream=0):
    """v = momentum*v - lr*g; p += v (nesterov: p += momentum*v - lr*g); momentum 0:
    p -= lr*g, and v may be any array of p's dtype (it is not read)."""
    dt = p.dtype.type
    _launch(_sgd, p, stream, g, v, seg_start, seg_end, seg_lr, dt(lr), dt(momentum),
            bool(nesterov))


def rmsprop_update(p, g, s, seg_start, seg_end, seg_lr, lr, rho, eps, stream=0):
    dt = p.dtype.type
    _launch(_rmsprop, p, stream, g, s, seg_start, seg_end, seg_lr, dt(lr), dt(rho), dt(eps))


def adagrad_update(p, g, s, seg_start, seg_end, seg_lr, lr, eps, stream=0):
    dt = p.dtype.type
    _launch(_adagrad, p, stream, g, s, seg_start, seg_end, seg_lr, dt(lr), dt(eps))


def adam_update(p, g, m, v, seg_start, seg_end, seg_lr, lr, beta1, beta2, eps, t, stream=0):
    """Adam's step t (the updates already made; bias correction with t + 1)."""
    dt = p.dtype.type
    c1, c2 = 1 - beta1 ** (t + 1), 1 - beta2 ** (t + 1)
    _launch(_adam, p, stream, g, m, v, seg_start, seg_end, seg_lr, dt(lr), dt(beta1),
            dt(beta2), dt(eps), dt(c1), dt(c2))
