"""The random numbers of dropout and gaussian_noise as CUDA device functions: thread i of a
generated kernel computes the i-th draw of its layer directly, with no state carried from
one thread or one draw to the next.

The same counter-based stream as nngraph/random_stream.py (whose docstring describes it)
and kernels/cpu/random_stream.py, the same operations in the same order, so that a kernel
draws the very bits the reference backend's numpy rules draw:

    key = node_key(words, node)          words: model seed, step, first sample of the run
    c = words[2] * values per sample + i (the value's index in the whole batch)
    u = uniform(key, c)                  dropout keeps the value when u >= rate
    e = normal(key, c, stddev)           gaussian_noise adds e, rounded once to the dtype

The uniform numbers take integer operations and one exact product by 2^-53, so a GPU gives
the reference's bits as they are. The normal numbers' ln and cos are polynomials, and a GPU
compiler contracts a product followed by a sum into one fused multiply-add (one rounding,
not two) unless told not to, even without fastmath: every such product and sum here goes
through _mul and _add, which on a GPU are libdevice's round-to-nearest operations that are
never fused (`__nv_dmul_rn`, `__nv_dadd_rn`). Under numba's simulator, which runs kernels
as Python (IEEE products and sums, nothing fused) and has no libdevice, they are the plain
operations. The simulator computes the 64-bit products with numpy scalars, which wrap as
the GPU's do but warn "overflow encountered"; the values are right.
"""
from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE, _TWO = np.uint64(1), np.uint64(2)
_ULP = 2.0 ** -53
_SQRT_HALF = math.sqrt(0.5)
_LN2 = math.log(2.0)
_TWO_PI = 2.0 * math.pi
# Taylor coefficients, highest power first, as in nngraph/random_stream.py
_LOG = tuple(1 / k for k in range(21, 0, -2))
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(8, -1, -1))
_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8, -1, -1))

if config.ENABLE_CUDASIM:
    @cuda.jit(device=True)
    def _mul(a, b):
        return a * b

    @cuda.jit(device=True)
    def _add(a, b):
        return a + b
else:                                                   # pragma: no cover (a GPU)
    from numba.cuda import libdevice
    _mul, _add = libdevice.dmul_rn, libdevice.dadd_rn


@cuda.jit(device=True)
def _mix(z):
    """splitmix64's finalizer (wrapping 64-bit products)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@cuda.jit(device=True)
def node_key(words, node):
    """The key of node `node`'s stream in a run with stream words `words` (a uint64 device
    array: model seed mod 2^64, step, first sample): words[0], words[1], node folded."""
    k = np.uint64(0)
    k = _mix((k + _GAMMA) ^ words[0])
    k = _mix((k + _GAMMA) ^ words[1])
    return _mix((k + _GAMMA) ^ np.uint64(node))


@cuda.jit(device=True)
def _bits(key, c):
    return _mix(key + (c + _ONE) * _GAMMA)


@cuda.jit(device=True)
def uniform(key, c):
    """The uniform number in [0, 1) of counter c (an integer >= 0) of stream `key`."""
    return np.float64(_bits(key, np.uint64(c)) >> _S11) * _ULP


@cuda.jit(device=True)
def _horner(x, coefficients):
    p = coefficients[0]
    for j in range(1, len(coefficients)):
        p = _add(_mul(p, x), coefficients[j])
    return p


@cuda.jit(device=True)
def _log(u):
    """ln u for u in (0, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2))."""
    m, e = math.frexp(u)
    if m < _SQRT_HALF:
        m = m * 2.0
        e = e - 1
    s = (m - 1.0) / (m + 1.0)
    return _add(_mul(np.float64(e), _LN2), _mul(2.0 * s, _horner(s * s, _LOG)))


@cuda.jit(device=True)
def _cos_2pi(v):
    """cos(2 pi v) for v in [0, 1), reduced by exact steps to a cos or sin on [0, pi/4]."""
    a = abs(v if v < 0.5 else v - 1.0)
    far = a > 0.25
    if far:
        a = 0.5 - a
    if a <= 0.125:
        x = _TWO_PI * a
        c = _horner(x * x, _COS)
    else:
        x = _TWO_PI * (0.25 - a)
        c = x * _horner(x * x, _SIN)
    return -c if far else c


@cuda.jit(device=True)
def normal(key, c, stddev):
    """stddev times the standard normal number of counter c of stream `key` (float64;
    Box-Muller on counters 2c and 2c + 1)."""
    c2 = np.uint64(c) * _TWO
    u1 = np.float64((_bits(key, c2) >> _S11) + _ONE) * _ULP
    u2 = np.float64(_bits(key, c2 + _ONE) >> _S11) * _ULP
    # the last product rounded on its own: the caller adds it to a value
    return _mul(stddev, math.sqrt(-2.0 * _log(u1)) * _cos_2pi(u2))
