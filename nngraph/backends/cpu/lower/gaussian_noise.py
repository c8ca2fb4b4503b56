"""gaussian_noise: in training y = x + stddev * e, e the standard normal numbers of the
node's counter-based stream, drawn in the kernel as the reference rule draws them (rounded
once to the model's dtype); in evaluate and predict y = x, a view. The noise does not
depend on x, so the gradient passes through: a view of the incoming one, or a copy."""
from __future__ import annotations

from . import Kernel, lowers
from ._noise import STREAM_ARGS, STREAM_LINES, gradient_through, identity, stream_call

_NOISY = ["    for i in range(xf.size):",
          "        yf[i] = xf[i] + _f(_random_stream.normal(key, first + i, stddev))"]


@lowers("gaussian_noise", kind="forward", calls=("_random_stream.node_key", "_random_stream.normal"))
def gaussian_noise_forward(site):
    n = site.group.nodes[0]
    call = stream_call(site, n)
    if call is None:
        return identity(site, n)
    d = site.node(n)
    return Kernel(["x", "y"] + STREAM_ARGS + ["stddev"], STREAM_LINES + _NOISY,
                  [site.val(d.inputs[0]), site.val(n)] + call +
                  [repr(float(d.attrs["stddev"]))])


@lowers("gaussian_noise", kind="backward")
def gaussian_noise_backward(site):
    return gradient_through(site, site.group.nodes[0].of)
