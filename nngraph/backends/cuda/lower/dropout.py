"""dropout: in training y = x * m / (1 - rate), a thread per value drawing its mask value m
from the node's counter-based stream (m = 1 where uniform >= rate), the very mask the
reference rule draws; the backward draws it again rather than keeping it (a hash per value,
no buffer), with the same kernel. In evaluate and predict y = x, a view (or a copy)."""
from __future__ import annotations

from . import Call, Extern, lowers
from ._noise import identity, stream_call, stream_launcher

_MASKED = ["    m = _f(1.0) if _random_stream.uniform(key, c) >= rate else _f(0.0)",
           "    y[i] = x[i] * m / _f(1.0 - rate)"]


def _masked(site, n, x, y, call, doc):
    """The call of the masking kernel on x into y (`call`: the stream's arguments), and its
    source."""
    name = f"k_{site.group.name}"
    return Extern([Call(name, [x, y] + call +
                        [repr(float(site.node(n).attrs["rate"]))])],
                  {name: stream_launcher(name, "rate", _MASKED, doc)})


@lowers("dropout", kind="forward", calls=("_random_stream.node_key", "_random_stream.uniform"))
def dropout_forward(site):
    n = site.group.nodes[0]
    call = stream_call(site, n)
    if call is None:
        return identity(site, n)
    return _masked(site, n, site.val(site.node(n).inputs[0]), site.val(n), call,
                   f"{n} (dropout): y = x * mask / (1 - rate), the mask drawn from its stream")


@lowers("dropout", kind="backward", calls=("_random_stream.node_key", "_random_stream.uniform"))
def dropout_backward(site):
    """gx = gy * m / (1 - rate), with the forward's mask drawn again (same node, counters)."""
    n = site.group.nodes[0].of
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    return _masked(site, n, site.grad(n), gx, stream_call(site, n),
                   f"backward of {n} (dropout): x the output's gradient, y the input's, the "
                   "forward's mask drawn again")
