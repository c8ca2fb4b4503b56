"""What dropout and gaussian_noise share: the identity they are in evaluate and predict, and
the first lines of their training kernels, which find the node's random stream
(nngraph/random_stream.py; kernels/cpu/random_stream.py draws from it one value at a time).
"""
from __future__ import annotations

import math

from . import Kernel, View
from .reshape import _COPY, _COPY_ARGS

STREAM_ARGS = ["words", "node", "per_sample"]

STREAM_LINES = [
    "    key = _random_stream.node_key(words, node)",
    "    first = np.int64(words[2]) * per_sample   # the run's first value, in the batch",
    "    xf = _flat(x)",
    "    yf = _flat(y)",
]
"""Lines that set `key` (the node's stream), `first` (the counter of the run's first value)
and the flat views `xf`, `yf`."""


def stream_call(site, n) -> list | None:
    """The driver's arguments for STREAM_ARGS at node n; None outside training."""
    stream = site.stream(n)
    if stream is None:
        return None
    words, index = stream
    return [words, str(index), str(math.prod(site.shape(n)))]


def identity(site, n):
    """y = x: a view of x where the arena holds both (no kernel, no copy), else a copy
    (x is a network input), with the kernel flatten and reshape copy with."""
    x, y = site.val(site.node(n).inputs[0]), site.val(n)
    if site.alias(y, x):
        return View(y, x)
    return Kernel(_COPY_ARGS, _COPY, [x, y, "True"])


def gradient_through(site, n):
    """gx = gy, for an op whose gradient passes through unchanged: a view where the arena
    holds both, else a copy; None where nothing wants gx."""
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    gy = site.grad(n)
    if site.alias(gy, gx):
        return View(gy, gx)
    return Kernel(_COPY_ARGS, _COPY, [gx, gy, "False"])
