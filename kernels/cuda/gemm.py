"""The product of two matrices on the GPU, tiled in shared memory: the fallback when no BLAS
library (cuBLAS) is bound, and what runs under numba's CUDA simulator (with gemm_small,
for small products, below).

c = alpha * op(a) @ op(b) + beta * c, op(x) = x or x.T (ta, tb), as kernels/cpu/blas.gemm.
Each block computes a TILE x TILE tile of c: for every TILE-wide slice of the inner
dimension, its threads load one tile of op(a) and one of op(b) into shared memory (each
thread one element of each, zero beyond the edges), synchronise, and add the slice's
products. Every element of a and b is then read from device memory once per tile of c
that needs it, not once per product.
"""
from __future__ import annotations

import os

from numba import cuda

from .launch import TILE, blocks, grid, per_dtype


def _gemm_kernel(dtype):
    @cuda.jit
    def gemm_tiled(alpha, a, ta, b, tb, beta, c):
        sa = cuda.shared.array((TILE, TILE), dtype)
        sb = cuda.shared.array((TILE, TILE), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        m, n = c.shape
        inner = a.shape[0] if ta else a.shape[1]
        acc = dtype(0)
        for start in range(0, inner, TILE):
            k = start + tx                      # this thread's column of op(a)'s tile
            if row < m and k < inner:
                sa[ty, tx] = a[k, row] if ta else a[row, k]
            else:
                sa[ty, tx] = 0
            k = start + ty                      # and row of op(b)'s
            if k < inner and col < n:
                sb[ty, tx] = b[col, k] if tb else b[k, col]
            else:
                sb[ty, tx] = 0
            cuda.syncthreads()
            for j in range(TILE):
                acc += sa[ty, j] * sb[j, tx]
            cuda.syncthreads()
        if row < m and col < n:
            if beta == 0:                       # c may hold anything, NaN included
                c[row, col] = alpha * acc
            else:
                c[row, col] = alpha * acc + beta * c[row, col]
    return gemm_tiled


gemm_kernel = per_dtype(_gemm_kernel)

SMALL = 1 << 16
"""Products of at most this many multiply-adds run on gemm_small: a thread per value of c
and no shared memory. There a tile would be mostly padding and its barriers would cost
more than the reads they save; under the simulator, where every barrier is a round of
Python threads, it is also many times faster. NNGRAPH_CUDA_GEMM=tiled sends every product
to the tiled kernel (the tests run a network so)."""


def _gemm_small_kernel(dtype):
    @cuda.jit
    def gemm_small(alpha, a, ta, b, tb, beta, c):
        m, n = c.shape
        for i in range(cuda.grid(1), m * n, cuda.gridsize(1)):
            row, col = i // n, i % n
            inner = a.shape[0] if ta else a.shape[1]
            acc = dtype(0)
            for k in range(inner):
                acc += (a[k, row] if ta else a[row, k]) * (b[col, k] if tb else b[k, col])
            c[row, col] = alpha * acc if beta == 0 else alpha * acc + beta * c[row, col]
    return gemm_small


gemm_small = per_dtype(_gemm_small_kernel)


def _small(m: int, n: int, inner: int) -> bool:
    return m * n * inner <= SMALL and os.environ.get("NNGRAPH_CUDA_GEMM") != "tiled"


def gemm(alpha, a, ta: bool, b, tb: bool, beta, c, stream=0) -> None:
    """c = alpha * op(a) @ op(b) + beta * c on the device (a, b, c device arrays of one
    dtype; shapes as the transposes make them agree)."""
    m, n = c.shape
    am, ak = (a.shape[1], a.shape[0]) if ta else a.shape
    bk, bn = (b.shape[1], b.shape[0]) if tb else b.shape
    if am != m or bn != n or ak != bk:
        raise ValueError(f"gemm: op(a) {am}x{ak} @ op(b) {bk}x{bn} into c {m}x{n}")
    if m == 0 or n == 0:
        return
    if _small(m, n, ak):
        dt = c.dtype.type
        gemm_small(c.dtype)[grid(m * n) + (stream,)](dt(alpha), a, bool(ta), b, bool(tb),
                                                   dt(beta), c)
        return
    kernel = gemm_kernel(c.dtype)
    tiles = (blocks(n, TILE), blocks(m, TILE))
    kernel[tiles, (TILE, TILE), stream](c.dtype.type(alpha), a, bool(ta), b, bool(tb),
                                       c.dtype.type(beta), c)
