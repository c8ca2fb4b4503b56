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

import numba
from numba import cuda

from .launch import THREADS, grid, per_dtype


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
def _lr_mult(i, seg_start, seg_end, seg_lr):
    """The learning-rate multiplier of flat position i (of the parameters): 0 where nothing
    learns (a gap between segments, a frozen parameter; 0 in the parameters' type, since
    seg_lr is finite)."""
    k = _segment(i, seg_end)
    return seg_lr[k] - seg_lr[k] if i < seg_start[k] else seg_lr[k]


def _sgd_kernel(dtype):
    @cuda.jit
    def _sgd(p, g, v, seg_start, seg_end, seg_lr, lr, momentum, nesterov):
        zero = dtype(0)
        for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            mult = _lr_mult(i, seg_start, seg_end, seg_lr)
            if mult == zero:                # a gap or a frozen parameter
                continue
            rate = lr * mult
            if momentum == zero:
                p[i] -= rate * g[i]
                continue
            vi = momentum * v[i] - rate * g[i]
            v[i] = vi
            p[i] += momentum * vi - rate * g[i] if nesterov else vi
    return _sgd


_sgd = per_dtype(_sgd_kernel)


def _rmsprop_kernel(dtype):
    @cuda.jit
    def _rmsprop(p, g, s, seg_start, seg_end, seg_lr, lr, rho, eps):
        one, zero = dtype(1), dtype(0)
        for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            mult = _lr_mult(i, seg_start, seg_end, seg_lr)
            if mult == zero:                # a gap or a frozen parameter
                continue
            rate = lr * mult
            gi = g[i]
            si = rho * s[i] + (one - rho) * gi * gi
            s[i] = si
            p[i] -= rate * gi / (math.sqrt(si) + eps)
    return _rmsprop


_rmsprop = per_dtype(_rmsprop_kernel)


def _adagrad_kernel(dtype):
    @cuda.jit
    def _adagrad(p, g, s, seg_start, seg_end, seg_lr, lr, eps):
        zero = dtype(0)
        for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            mult = _lr_mult(i, seg_start, seg_end, seg_lr)
            if mult == zero:                # a gap or a frozen parameter
                continue
            rate = lr * mult
            gi = g[i]
            si = s[i] + gi * gi
            s[i] = si
            p[i] -= rate * gi / (math.sqrt(si) + eps)
    return _adagrad


_adagrad = per_dtype(_adagrad_kernel)


def _adam_kernel(dtype):
    @cuda.jit
    def _adam(p, g, m, v, seg_start, seg_end, seg_lr, lr, beta1, beta2, eps, c1, c2):
        one, zero = dtype(1), dtype(0)
        for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            mult = _lr_mult(i, seg_start, seg_end, seg_lr)
            if mult == zero:                # a gap or a frozen parameter
                continue
            rate = lr * mult
            gi = g[i]
            mi = beta1 * m[i] + (one - beta1) * gi
            vi = beta2 * v[i] + (one - beta2) * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] -= rate * (mi / c1) / (math.sqrt(vi / c2) + eps)
    return _adam


_adam = per_dtype(_adam_kernel)


def _launch(kernel, p, stream, *args):
    if p.shape[0]:
        kernel(p.dtype)[grid(p.shape[0]) + (stream,)](p, *args)


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


@cuda.jit
def _regularize(p, g, seg_start, seg_end, seg_l1, seg_l2, add_grad, out):
    """Segment k (one block): out[k] = sum of l1*|p| + l2*p^2 and, with add_grad,
    g += l1*sign(p) + 2*l2*p over the segment."""
    k, tid = cuda.blockIdx.x, cuda.threadIdx.x
    shared = cuda.shared.array(THREADS, dtype=numba.float64)
    l1, l2 = seg_l1[k], seg_l2[k]
    acc = 0.0
    for i in range(seg_start[k] + tid, seg_end[k], cuda.blockDim.x):
        w = p[i]
        acc += l1 * abs(w) + l2 * w * w
        if add_grad:
            sign = 1 if w > 0 else (-1 if w < 0 else 0)
            g[i] += l1 * sign + 2 * l2 * w
    shared[tid] = acc
    half = cuda.blockDim.x // 2
    while half > 0:
        cuda.syncthreads()
        if tid < half:
            shared[tid] += shared[tid + half]
        half //= 2
    if tid == 0:
        out[k] = shared[0]


def regularize(p, g, seg_start, seg_end, seg_l1, seg_l2, out, add_grad=True, stream=0) -> float:
    """The penalty sum of l1*|p| + l2*p^2 over the regularized segments, read back as one
    number (summed in float64, each segment's share in out), and, with add_grad, its
    gradient added into g; seg_l1/seg_l2 float64 device arrays, out float64 of one value
    per segment."""
    count = seg_start.shape[0]
    if count == 0:
        return 0.0
    _regularize[count, THREADS, stream](p, g, seg_start, seg_end, seg_l1, seg_l2,
                                        bool(add_grad), out)
    return float(out.copy_to_host().sum())


@cuda.jit
def _fill(a, value):
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        a[i] = value


def zero(a, stream=0) -> None:
    """a[...] = 0 for a flat device array."""
    if a.shape[0]:
        _fill[grid(a.shape[0]) + (stream,)](a, a.dtype.type(0))
