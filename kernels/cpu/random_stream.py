"""The random numbers of dropout and gaussian_noise, one at a time, for generated kernels.

The same counter-based stream as nngraph/random_stream.py (whose docstring describes it),
the same operations in the same order, so that a kernel draws the very bits the reference
backend's numpy rules draw (tests/test_lower_noise.py checks, float32 and float64):

    key = node_key(words, node)          words: model seed, step, first sample of the run
    for i in range(x.size):              (index in the whole batch: a half of a batch
        u = uniform(key, first + i)       counts from its own first sample)
        e = normal(key, first + i, stddev)

These helpers are compiled without fastmath: contraction into FMAs, reassociation or
approximate functions would change the last bits, and then a mask or a noise value would
differ from the reference's. (They are small plain calls, which LLVM inlines into the
kernel loop; the flags are per instruction, so the kernel's own fastmath does not reach
them, as long as each says fastmath=False itself: see _exact.) The constants are those of nngraph/random_stream.py, written again here because
compiled code keeps constants and the kernels' cache knows only the files of kernels/cpu.
"""
import math

import numba
import numpy as np

from ._jit import Pipeline, _without_literals

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)
_ULP = 2.0 ** -53
_SQRT_HALF = math.sqrt(0.5)
_LN2 = math.log(2.0)
_TWO_PI = 2.0 * math.pi
_LOG = tuple(1 / k for k in range(21, 0, -2))
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(8, -1, -1))
_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8, -1, -1))


def _exact(fn):
    """numba.njit as kernels/cpu/_jit.kernel, but without fastmath (see the top)."""
    # fastmath=False said outright: numba gives a callee the caller's fastmath where the
    # callee leaves it unset, and the generated kernels that call these use fastmath
    return _without_literals(numba.njit(cache=True, nogil=True, error_model="numpy",
                                        fastmath=False, no_cfunc_wrapper=True, _nrt=False,
                                        pipeline_class=Pipeline)(fn))


@_exact
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@_exact
def node_key(words, node):
    """The key of node `node`'s stream in a run with stream words `words` (uint64: model
    seed mod 2^64, step, first sample): words[0], words[1] and node folded."""
    k = np.uint64(0)
    k = _mix((k + _GAMMA) ^ words[0])
    k = _mix((k + _GAMMA) ^ words[1])
    return _mix((k + _GAMMA) ^ np.uint64(node))


@_exact
def _bits(key, c):
    return _mix(key + (c + _ONE) * _GAMMA)


@_exact
def uniform(key, c):
    """The uniform number in [0, 1) of counter c (an int >= 0) of stream `key`."""
    return np.float64(_bits(key, np.uint64(c)) >> _S11) * _ULP


@_exact
def _horner(x, coefficients):
    p = coefficients[0]
    for j in range(1, len(coefficients)):
        p = p * x + coefficients[j]
    return p


@_exact
def _log(u):
    m, e = math.frexp(u)
    if m < _SQRT_HALF:
        m = m * 2.0
        e = e - 1
    s = (m - 1.0) / (m + 1.0)
    return np.float64(e) * _LN2 + 2.0 * s * _horner(s * s, _LOG)


@_exact
def _cos_2pi(v):
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


@_exact
def normal(key, c, stddev):
    """stddev times the standard normal number of counter c of stream `key` (float64)."""
    c2 = np.uint64(c) * np.uint64(2)
    u1 = np.float64((_bits(key, c2) >> _S11) + _ONE) * _ULP
    u2 = np.float64(_bits(key, c2 + _ONE) >> _S11) * _ULP
    return stddev * (math.sqrt(-2.0 * _log(u1)) * _cos_2pi(u2))
