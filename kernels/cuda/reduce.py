"""Reductions on the GPU: sums over a batch (bias gradients, a loss's total) and the softmax
cross-entropy of each row, forward and backward in one pass.

A row's reductions (its maximum, its sum of exponentials) run in one block: each thread
folds a strided share of the row, then the block halves its shared array until one value
is left (a tree, log2 of the block's width in steps, a barrier between them). Sums over
the batch of each column run one thread per column down the rows: neighbouring threads
read neighbouring addresses, so a warp's reads coalesce, and no atomics make the result
depend on timing.
"""
from __future__ import annotations

import math

from numba import cuda

from .launch import THREADS, grid, per_dtype


def _column_sums_kernel(dtype):
    @cuda.jit
    def column_sums(x, beta, out):
        for j in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            acc = dtype(0)
            for i in range(x.shape[0]):
                acc += x[i, j]
            out[j] = acc if beta == 0 else acc + beta * out[j]
    return column_sums


column_sums_kernel = per_dtype(_column_sums_kernel)


def column_sums(x, out, beta=0.0, stream=0) -> None:
    """out = sum of x's rows (+ beta * out): x (N, C) -> out (C,)."""
    if x.shape[1] != out.shape[0]:
        raise ValueError(f"column_sums: x has {x.shape[1]} columns, out {out.shape[0]}")
    kernel = column_sums_kernel(out.dtype)
    kernel[grid(out.shape[0]) + (stream,)](x, out.dtype.type(beta), out)


def _row_sums_kernel(dtype):
    @cuda.jit
    def row_sums(x, out):
        """out[i] = sum of x[i] (one block per row: a conv's bias gradient, whose rows are
        the filters and whose columns the batch's output positions)."""
        shared = cuda.shared.array(THREADS, dtype)
        i, tid = cuda.blockIdx.x, cuda.threadIdx.x
        acc = dtype(0)
        for j in range(tid, x.shape[1], cuda.blockDim.x):
            acc += x[i, j]
        shared[tid] = acc
        _tree(shared, tid, False)
        if tid == 0:
            out[i] = shared[0]
    return row_sums


row_sums_kernel = per_dtype(_row_sums_kernel)


def _short_row_sums_kernel(dtype):
    @cuda.jit
    def short_row_sums(x, out):
        for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            acc = dtype(0)
            for j in range(x.shape[1]):
                acc += x[i, j]
            out[i] = acc
    return short_row_sums


short_row_sums = per_dtype(_short_row_sums_kernel)


SHORT = 64
"""Rows of at most this many values are summed by a thread each (no block's tree, whose
barriers cost more than such a row's reads)."""


def row_sums(x, out, stream=0) -> None:
    """out = sum of x's columns: x (R, M) -> out (R,)."""
    if x.shape[0] != out.shape[0]:
        raise ValueError(f"row_sums: x has {x.shape[0]} rows, out {out.shape[0]}")
    if 0 < x.shape[1] <= SHORT:
        short_row_sums(out.dtype)[grid(x.shape[0]) + (stream,)](x, out)
    elif x.shape[0]:
        row_sums_kernel(out.dtype)[x.shape[0], _width(x.shape[1]), stream](x, out)


def _channel_sums_kernel(dtype):
    @cuda.jit
    def channel_sums(x, out):
        """out[c] = sum of x[:, c] (NCHW; one block per channel: a transposed conv's bias
        gradient)."""
        shared = cuda.shared.array(THREADS, dtype)
        c, tid = cuda.blockIdx.x, cuda.threadIdx.x
        hw = x.shape[2] * x.shape[3]
        acc = dtype(0)
        for j in range(tid, x.shape[0] * hw, cuda.blockDim.x):
            p = j % hw
            acc += x[j // hw, c, p // x.shape[3], p % x.shape[3]]
        shared[tid] = acc
        _tree(shared, tid, False)
        if tid == 0:
            out[c] = shared[0]
    return channel_sums


channel_sums_kernel = per_dtype(_channel_sums_kernel)


def channel_sums(x, out, stream=0) -> None:
    """out = the sums of x's channels: x (N, C, H, W) -> out (C,)."""
    if x.shape[1] != out.shape[0]:
        raise ValueError(f"channel_sums: x has {x.shape[1]} channels, out {out.shape[0]}")
    if x.shape[1]:
        width = _width(x.shape[0] * x.shape[2] * x.shape[3])
        channel_sums_kernel(out.dtype)[x.shape[1], width, stream](x, out)


@cuda.jit(device=True)
def _tree(shared, tid, op_max):
    """Fold the block's shared[0:blockDim.x] into shared[0] (maximum or sum; the block's
    width a power of two)."""
    half = cuda.blockDim.x // 2
    while half > 0:
        cuda.syncthreads()
        if tid < half:
            other = shared[tid + half]
            if op_max:
                if other > shared[tid]:
                    shared[tid] = other
            else:
                shared[tid] += other
        half //= 2
    cuda.syncthreads()


def _sum_kernel(dtype):
    @cuda.jit
    def total(x, scale, out):
        """out[0] = scale * sum(x), in one block (losses: a vector of per-row values)."""
        shared = cuda.shared.array(THREADS, dtype)
        tid = cuda.threadIdx.x
        acc = dtype(0)
        for i in range(tid, x.shape[0], cuda.blockDim.x):
            acc += x[i]
        shared[tid] = acc
        _tree(shared, tid, False)
        if tid == 0:
            out[0] = shared[0] * scale
    return total


sum_kernel = per_dtype(_sum_kernel)


def total(x, out, scale=1.0, stream=0) -> None:
    """out[0] = scale * sum(x) for a vector x (one block: x is a batch's per-row values)."""
    sum_kernel(out.dtype)[1, _width(x.shape[0]), stream](x, out.dtype.type(scale), out)


def _width(n: int) -> int:
    """A one-block reduction's width for n values: the power of two from a warp up to
    THREADS that covers them (fewer idle threads for short rows)."""
    return min(THREADS, max(32, 1 << (int(n) - 1).bit_length()))


def _softmax_xent_kernel(dtype):
    @cuda.jit
    def softmax_xent(x, labels, scale, loss_rows, g):
        """Row i (one block): loss_rows[i] = logsumexp(x[i]) - x[i, labels[i]] and, where
        g has rows, g[i] = scale * (softmax(x[i]) - onehot(labels[i]))."""
        shared = cuda.shared.array(THREADS, dtype)
        i, tid, width = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        classes = x.shape[1]
        peak = dtype(-math.inf)
        for j in range(tid, classes, width):
            if x[i, j] > peak:
                peak = x[i, j]
        shared[tid] = peak
        _tree(shared, tid, True)
        peak = shared[0]
        cuda.syncthreads()                  # every thread has read the maximum
        acc = dtype(0)
        for j in range(tid, classes, width):
            acc += math.exp(x[i, j] - peak)
        shared[tid] = acc
        _tree(shared, tid, False)
        denom = shared[0]
        label = labels[i]
        if tid == 0:
            loss_rows[i] = math.log(denom) + peak - x[i, label]
        if g.shape[0] > 0:
            for j in range(tid, classes, width):
                p = math.exp(x[i, j] - peak) / denom
                g[i, j] = scale * (p - dtype(1) if j == label else p)
    return softmax_xent


softmax_xent_kernel = per_dtype(_softmax_xent_kernel)


def softmax_cross_entropy(x, labels, loss_rows, g, scale=1.0, stream=0) -> None:
    """Per-row softmax cross-entropy of logits x (N, C) against class indices `labels`
    (N,) into loss_rows (N,), and its gradient times `scale` into g (N, C); g of shape
    (0, C) for the loss alone. Class indices are checked on the host before they come."""
    n = x.shape[0]
    if n == 0:
        raise ValueError("softmax_cross_entropy: an empty batch has no mean loss")
    softmax_xent_kernel(x.dtype)[n, _width(x.shape[1]), stream](x, labels, x.dtype.type(scale),
                                                   loss_rows, g)


def softmax_cross_entropy_loss(x, labels, loss_rows, g, out, mean, weight, stream=0) -> float:
    """The softmax cross-entropy of logits x (N, C) against class indices, summed over the
    batch or its mean (`mean`), read back as the one number a step returns; its gradient
    times `weight` (and 1/N for the mean) into g (N, C). loss_rows (N,) and out (1,) are
    device scratch."""
    n = x.shape[0]
    scale = weight / n if mean else weight
    softmax_cross_entropy(x, labels, loss_rows, g, scale, stream)
    total(loss_rows, out, 1.0 / n if mean else 1.0, stream)
    return float(out.copy_to_host()[0])
