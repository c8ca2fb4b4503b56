"""The random numbers of dropout and gaussian_noise: a counter-based stream, in numpy.

Every number is a pure function of a key and a counter; nothing is carried from one draw,
one step or one thread to the next:

    key         the words the reference backend seeds a node's generator with, [model
                seed, step, node index] (the node's place in the evaluation order of the
                losses, see backends/reference.py), each taken mod 2^64, folded as
                k = 0, then k = mix((k + GAMMA) ^ word) for each word
    counter c   the value's index in the whole batch, C order: value j of sample i of a
                layer with m values per sample is c = i * m + j
    bits(c)     mix(key + (c + 1) * GAMMA): splitmix64's output number c + 1 from state
                `key` (mix is its finalizer, a bijection of 64-bit words; Steele, Lea and
                Flood, "Fast splittable pseudorandom number generators", 2014)
    uniform(c)  (bits(c) >> 11) * 2^-53, in [0, 1): dropout keeps a value when it is >= rate
    normal(c)   Box-Muller on counters 2c and 2c + 1: sqrt(-2 ln u1) cos(2 pi u2), with
                u1 = ((bits(2c) >> 11) + 1) * 2^-53 in (0, 1] and u2 = uniform(2c + 1);
                gaussian_noise adds stddev * normal(c), rounded once to the model's dtype

Why counter-based: a value's random number depends only on (seed, step, node, index), not
on how or where it is computed. The reference backend's numpy rules draw a whole batch at
once (here, vectorized); the CPU backend's generated kernels draw one value at a time
(kernels/cpu/random_stream.py), on one thread or on two halves of a batch, each half
counting from its first sample's index in the whole batch; all get the same bits. No state
means nothing to save either: a model resumed from a checkpoint, which holds the seed and
the step, draws what it would have drawn had it never stopped.

ln and cos are computed here from +, -, *, / and sqrt, which IEEE 754 rounds exactly, and
not with numpy's or libm's log and cos, whose last bits differ between implementations
(numpy has SIMD versions for some CPUs). The kernels do the same operations in the same
order, compiled without fastmath; tests/test_lower_noise.py checks that both give the same
bits.
"""
from __future__ import annotations

import math

import numpy as np

MASK = (1 << 64) - 1
GAMMA = np.uint64(0x9E3779B97F4A7C15)           # 2^64 / golden ratio, splitmix64's step
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_ULP = 2.0 ** -53
_SQRT_HALF = math.sqrt(0.5)
_LN2 = math.log(2.0)
_TWO_PI = 2.0 * math.pi
# Taylor coefficients, highest power first (Horner): ln m = 2 s (1 + s^2/3 + s^4/5 + ...)
# with s = (m - 1) / (m + 1), |s| <= 0.172; cos and sin of x in [0, pi/4]. The first left
# out is below 1e-18 of the result in each.
LOG = tuple(1 / k for k in range(21, 0, -2))
COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(8, -1, -1))
SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8, -1, -1))


def mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer of a uint64 array (wrapping products)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def key(words) -> np.uint64:
    """The key of a stream seeded with `words` (an int or a sequence of ints >= 0)."""
    k = np.zeros(1, np.uint64)
    for w in np.atleast_1d(np.asarray(words, dtype=object)).tolist():
        k = mix((k + GAMMA) ^ np.array([int(w) & MASK], np.uint64))
    return k[0]


def key_of(rng: np.random.Generator) -> np.uint64:
    """The key of the words `rng` was seeded with: the reference backend gives each node
    the generator np.random.default_rng([model seed, step, node index])."""
    return key(rng.bit_generator.seed_seq.entropy)


def bits(k: np.uint64, counters: np.ndarray) -> np.ndarray:
    return mix(k + (counters + np.uint64(1)) * GAMMA)


def uniform(k: np.uint64, counters: np.ndarray) -> np.ndarray:
    """Uniform numbers in [0, 1), float64, one per counter (a uint64 array)."""
    return (bits(k, counters) >> _S11).astype(np.float64) * _ULP


def normal(k: np.uint64, counters: np.ndarray, stddev: float = 1.0) -> np.ndarray:
    """stddev times standard normal numbers, float64, one per counter."""
    c = counters * np.uint64(2)
    u1 = ((bits(k, c) >> _S11) + np.uint64(1)).astype(np.float64) * _ULP
    u2 = (bits(k, c + np.uint64(1)) >> _S11).astype(np.float64) * _ULP
    return stddev * (np.sqrt(-2.0 * _log(u1)) * _cos_2pi(u2))


def counters(shape) -> np.ndarray:
    """The counters of a whole batch of `shape`: 0, 1, ... in C order."""
    return np.arange(math.prod(shape), dtype=np.uint64).reshape(shape)


def _horner(x, coefficients):
    p = coefficients[0]
    for c in coefficients[1:]:
        p = p * x + c
    return p


def _log(u: np.ndarray) -> np.ndarray:
    """ln u for u > 0: u = m 2^e with m in [sqrt(1/2), sqrt(2))."""
    m, e = np.frexp(u)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)
    e = np.where(low, e - 1, e)
    s = (m - 1.0) / (m + 1.0)
    return e.astype(np.float64) * _LN2 + 2.0 * s * _horner(s * s, LOG)


def _cos_2pi(v: np.ndarray) -> np.ndarray:
    """cos(2 pi v) for v in [0, 1), reduced to a cos or sin of x in [0, pi/4] by exact
    steps (each subtraction below is exact: Sterbenz)."""
    a = np.abs(np.where(v < 0.5, v, v - 1.0))          # [0, 1/2], cos(2 pi a) the same
    far = a > 0.25
    a = np.where(far, 0.5 - a, a)                       # cos(2 pi a) = -cos(pi - 2 pi a)
    near = a <= 0.125
    x = _TWO_PI * np.where(near, a, 0.25 - a)           # cos(2 pi a) = sin(pi/2 - 2 pi a)
    x2 = x * x
    c = np.where(near, _horner(x2, COS), x * _horner(x2, SIN))
    return np.where(far, -c, c)
