"""Embedding lookup (gather) and its gradient (scatter-add) on the GPU, as
nngraph/ops/embedding.py, with the signatures of kernels/cpu/embedding.py.

Indices come as the batch has them, (N,) or (N, T) integers, and are read flat (M,), the
output (N, dim) or (N, T, dim) as (M, dim). The forward is a thread per output value. The
backward zeroes gw, then a thread per value of gy adds it into its token's row with an
atomic add: tokens repeat, so threads meet on a row, and the order of their adds (which
the hardware picks) changes the last bits of a sum, not its value beyond rounding.

Indices outside [0, vocab) are checked on the host before a batch comes (batch.py: the
network's integer inputs against every vocabulary that reads them); the kernels still
guard against them, as the CPU's do: a bad index gives a zero row forward and adds nothing
backward, and nothing is read or written out of bounds.
"""
from __future__ import annotations

from numba import cuda

from .launch import grid


@cuda.jit
def _gather(idx, w, y):
    """y[m, d] = w[idx[m], d], i = m * dim + d."""
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        dim = w.shape[1]
        m, d = i // dim, i % dim
        k = idx[m]
        y[m, d] = w[k, d] if 0 <= k < w.shape[0] else 0


@cuda.jit
def _zero(a):
    for i in range(cuda.grid(1), a.shape[0] * a.shape[1], cuda.gridsize(1)):
        a[i // a.shape[1], i % a.shape[1]] = 0


@cuda.jit
def _scatter(idx, gy, gw):
    """gw[idx[m], d] += gy[m, d], i = m * dim + d (atomic: rows repeat)."""
    for i in range(cuda.grid(1), gy.size, cuda.gridsize(1)):
        dim = gw.shape[1]
        m, d = i // dim, i % dim
        k = idx[m]
        if 0 <= k < gw.shape[0]:
            cuda.atomic.add(gw, (k, d), gy[m, d])


def embedding_forward(idx, w, y, stream=0) -> None:
    """y[m] = w[idx[m]] for the flat indices idx and the rows of y."""
    dim = w.shape[1]
    flat_idx, rows = idx.reshape(idx.size), y.reshape(idx.size, dim)
    _gather[grid(rows.size) + (stream,)](flat_idx, w, rows)


def embedding_backward(idx, gy, gw, stream=0) -> None:
    """gw = 0, then gw[idx[m]] += gy[m] (repeated indices accumulate)."""
    dim = gw.shape[1]
    flat_idx, rows = idx.reshape(idx.size), gy.reshape(idx.size, dim)
    _zero[grid(gw.size) + (stream,)](gw)
    _scatter[grid(rows.size) + (stream,)](flat_idx, rows, gw)
