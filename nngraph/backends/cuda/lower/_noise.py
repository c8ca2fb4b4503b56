"""What the CUDA dropout and gaussian_noise share: the identity they are in evaluate and
predict, and the generated kernel of a training run, a thread per value that draws that
value's random number from the node's counter-based stream (kernels/cuda/random_stream.py,
the numbers the reference rules draw).

The node, the number of values per sample and the op's attribute (rate, stddev) are
arguments of the kernel, not constants in it, so every dropout (every gaussian_noise) of a
network shares one compiled kernel, its backward included where the code is the same."""
from __future__ import annotations

import math

from . import View
from .reshape import _copy

STREAM_LINES = [
    "    key = _random_stream.node_key(words, node)",
    "    c = np.int64(words[2]) * per_sample + i   # the value's index in the whole batch",
]
"""The first lines of a thread's body: `key`, its node's stream, and `c`, its counter."""


def stream_call(site, n) -> list | None:
    """The driver's arguments words, node and per_sample of node n's stream; None outside
    training (evaluate and predict draw nothing)."""
    stream = site.stream(n)
    if stream is None:
        return None
    words, index = stream
    return [words, str(index), str(math.prod(site.shape(n)))]


def stream_launcher(name: str, attr: str, body: list, doc: str) -> str:
    """Source of helper `name` (renamed __KERNEL__ by the codegen): a kernel with `body` run
    by a thread per value of y, i its index in the flat x and y, after STREAM_LINES; and its
    launcher, of arguments (x, y, words, node, per_sample, `attr`), which flattens x and y."""
    params = f"x, y, words, node, per_sample, {attr}"
    return "\n".join(
        ["@cuda.jit", f"def __KERNEL___gpu({params}):",
         "    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):"] + ["    " + line for line in STREAM_LINES + body] +
        ["", "", f"def {name}({params}):", f'    """{doc}"""',
         f"    __KERNEL___gpu[_grid(y.size)](_flat(x), _flat(y), words, node, "
         f"per_sample, {attr})", ""])


def identity(site, n):
    """y = x: a view of x where the arena holds both (nothing runs), else a copy (x is a
    network input), one thread per value."""
    x, y = site.val(site.node(n).inputs[0]), site.val(n)
    if site.alias(y, x):
        return View(y, x)
    return _copy(x, y)


def gradient_through(site, n):
    """gx = gy, for an op whose gradient passes through unchanged: a view where the arena
    holds both, else a copy; None where nothing wants gx."""
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    gy = site.grad(n)
    if site.alias(gy, gx):
        return View(gy, gx)
    return _copy(gy, gx)

