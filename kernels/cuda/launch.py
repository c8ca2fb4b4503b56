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
from numba.core import config

THREADS = 256
"""Threads per block of the one-dimensional kernels: a multiple of the warp (32) that
leaves room for several blocks per multiprocessor."""

TILE = 16
"""The side of a two-dimensional block (GEMM tiles, transposes): 256 threads."""


def blocks(n: int, threads: int = THREADS) -> int:
    """Blocks of `threads` that cover n items (at least one: a launch of no blocks is an
    error, and the kernels check their bounds)."""
    return max(1, -(-int(n) // threads))


SIMULATED_THREADS = 32
"""Threads of every one-dimensional launch under numba's CUDA simulator: it runs each CUDA
thread as a Python thread, whose start and join cost a thousand times what a kernel body
does with one value."""


def grid(n: int) -> tuple:
    """(blocks, threads per block) of a one-dimensional launch over n items. Every kernel
    launched so loops over its items with the grid's stride (`for i in range(cuda.grid(1),
    n, cuda.gridsize(1))`): on a GPU the grid covers them, a thread each, THREADS per block
    or for fewer items the whole warps that cover them; under the simulator one block of
    SIMULATED_THREADS takes them all."""
    if config.ENABLE_CUDASIM:
        return 1, SIMULATED_THREADS
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
