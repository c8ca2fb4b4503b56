"""softmax and log_softmax along the rows of (rows, classes) arrays on the GPU, forward and
backward, a block per row with shared-memory tree reductions (kernels/cuda/reduce.py's
_tree): the functions and arguments of kernels/cpu/softmax.py, so that one lowering rule
serves both backends (backends/cuda/lower/softmax.py).

    softmax:      y = exp(x - m) / s            gx = y * (gy - sum(gy * y))
    log_softmax:  y = x - m - log(s)            gx = gy - exp(y) * sum(gy)

with m the row's maximum and s the sum of exp(x - m)."""
from __future__ import annotations

import math

from numba import cuda

from .launch import THREADS, per_dtype
from .reduce import _tree, _width


def _forward_kernel(dtype):
    @cuda.jit
    def softmax_rows(x, y, log):
        shared = cuda.shared.array(THREADS, dtype)
        i, tid, width = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        peak = dtype(-math.inf)
        for j in range(tid, x.shape[1], width):
            if x[i, j] > peak:
                peak = x[i, j]
        shared[tid] = peak
        _tree(shared, tid, True)
        peak = shared[0]
        cuda.syncthreads()                  # every thread has read the maximum
        acc = dtype(0)
        for j in range(tid, x.shape[1], width):
            acc += math.exp(x[i, j] - peak)
        shared[tid] = acc
        _tree(shared, tid, False)
        total = shared[0]
        for j in range(tid, x.shape[1], width):
            if log:
                y[i, j] = x[i, j] - peak - math.log(total)
            else:
                y[i, j] = math.exp(x[i, j] - peak) / total
    return softmax_rows


def _backward_kernel(dtype):
    @cuda.jit
    def softmax_rows_grad(y, gy, gx, log):
        shared = cuda.shared.array(THREADS, dtype)
        i, tid, width = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        acc = dtype(0)
        for j in range(tid, y.shape[1], width):
            acc += gy[i, j] if log else gy[i, j] * y[i, j]
        shared[tid] = acc
        _tree(shared, tid, False)
        total = shared[0]
        for j in range(tid, y.shape[1], width):
            if log:
                gx[i, j] = gy[i, j] - math.exp(y[i, j]) * total
            else:
                gx[i, j] = y[i, j] * (gy[i, j] - total)
    return softmax_rows_grad


forward_kernel = per_dtype(_forward_kernel)
backward_kernel = per_dtype(_backward_kernel)


def _rows(kernel, a, *args, stream=0) -> None:
    if a.shape[0]:
        kernel(a.dtype)[a.shape[0], _width(a.shape[1]), stream](a, *args)


def softmax_forward(x, y, stream=0) -> None:
    """y = softmax(x) along rows."""
    _rows(forward_kernel, x, y, False, stream=stream)


def log_softmax_forward(x, y, stream=0) -> None:
    """y = log_softmax(x) along rows."""
    _rows(forward_kernel, x, y, True, stream=stream)


def softmax_backward(y, gy, gx, stream=0) -> None:
    """gx from softmax's output y and its gradient gy."""
    _rows(backward_kernel, y, gy, gx, False, stream=stream)


def log_softmax_backward(y, gy, gx, stream=0) -> None:
    """gx from log_softmax's output y and its gradient gy."""
    _rows(backward_kernel, y, gy, gx, True, stream=stream)
