"""dropout: in training y = x * m / (1 - rate), the mask m drawn in the kernel from the
node's counter-based stream (m = 1 where uniform >= rate), the very mask the reference
rule draws; the backward draws it again rather than keeping it (a hash per value, no
buffer). In evaluate and predict y = x, a view. The rate and the node are arguments: every
dropout over values of one rank shares one compiled kernel each way."""
from __future__ import annotations

from . import Kernel, lowers
from ._noise import STREAM_ARGS, STREAM_LINES, identity, stream_call

_MASKED = ["    keep = _f(1.0 - rate)",
           "    one, zero = _f(1.0), _f(0.0)",
           "    for i in range(xf.size):",
           "        m = one if _random_stream.uniform(key, first + i) >= rate else zero",
           "        yf[i] = xf[i] * m / keep"]


@lowers("dropout", kind="forward", calls=("_random_stream.node_key", "_random_stream.uniform"))
def dropout_forward(site):
    n = site.group.nodes[0]
    call = stream_call(site, n)
    if call is None:
        return identity(site, n)
    d = site.node(n)
    return Kernel(["x", "y"] + STREAM_ARGS + ["rate"], STREAM_LINES + _MASKED,
                  [site.val(d.inputs[0]), site.val(n)] + call + [repr(float(d.attrs["rate"]))])


@lowers("dropout", kind="backward", calls=("_random_stream.node_key", "_random_stream.uniform"))
def dropout_backward(site):
    """gx = gy * m / (1 - rate), with the forward's mask drawn again (same node, counters)."""
    n = site.group.nodes[0].of
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    # the forward's kernel, x the incoming gradient and y the outgoing one
    return Kernel(["x", "y"] + STREAM_ARGS + ["rate"], STREAM_LINES + _MASKED,
                  [site.grad(n), gx] + stream_call(site, n) +
                  [repr(float(site.node(n).attrs["rate"]))])
