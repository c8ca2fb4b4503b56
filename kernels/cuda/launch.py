"""What every CUDA kernel module shares: the launch geometry and one compiled kernel per
element type.

numba-cuda compiles a kernel for the argument types of its first launch; a kernel whose
shared memory holds elements of the arrays' type must know that type when it is written,
so the modules build such kernels from a factory, once per dtype (`per_dtype`).
"""
from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

THREADS = 256
"""Threads per block of the one-dimensional kernels: a multiple of the warp (32) that
leaves room for several blocks per multiprocessor."""

TILE = 16
"""The side of a two-dimensional block (GEMM tiles, transposes): 256 threads."""


def blocks(n: int, threads: int = THREADS) -> int:
    """Blocks of `threads` that cover n items (at least one: a launch of no blocks is an
    error, and the kernels check their bounds)."""
    return max(1, -(-int(n) // threads))


def grid(n: int) -> tuple:
    """(blocks, threads per block) of a one-dimensional launch over n items: THREADS per
    block, or for fewer items the whole warps that cover them (a small launch's idle
    threads cost nothing on a GPU but one Python thread each under the simulator)."""
    threads = THREADS if n >= THREADS else max(32, -(-int(n) // 32) * 32)
    return blocks(n, threads), threads


def numba_type(dtype):
    """numba's scalar type for numpy dtype `dtype` (float32 or float64)."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return numba.float32
    if dtype == np.float64:
        return numba.float64
    raise TypeError(f"CUDA kernels take float32 or float64 arrays, not {dtype}")


def per_dtype(factory):
    """`factory(numba scalar type) -> kernel`, called once per dtype: f(dtype) returns the
    kernel for arrays of that dtype."""
    made = lru_cache(maxsize=None)(lambda name: factory(numba_type(name)))
    return lambda dtype: made(np.dtype(dtype).name)
