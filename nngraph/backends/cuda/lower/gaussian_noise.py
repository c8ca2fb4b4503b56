"""gaussian_noise: in training y = x + stddev * e, a thread per value drawing its standard
normal number e from the node's counter-based stream as the reference rule draws it
(rounded once to the model's dtype); in evaluate and predict y = x, a view (or a copy). The
noise does not depend on x, so the gradient passes through: a view of the incoming one, or
a copy."""
from __future__ import annotations

from . import Call, Extern, lowers
from ._noise import gradient_through, identity, stream_call, stream_launcher

_NOISY = ["    y[i] = x[i] + _f(_random_stream.normal(key, c, stddev))"]


@lowers("gaussian_noise", kind="forward",
        calls=("_random_stream.node_key", "_random_stream.normal"))
def gaussian_noise_forward(site):
    n = site.group.nodes[0]
    call = stream_call(site, n)
    if call is None:
        return identity(site, n)
    d = site.node(n)
    name = f"k_{site.group.name}"
    doc = f"{n} (gaussian_noise): y = x + stddev * e, e drawn from the node's stream"
    return Extern([Call(name, [site.val(d.inputs[0]), site.val(n)] + call +
                        [repr(float(d.attrs["stddev"]))])],
                  {name: stream_launcher(name, "stddev", _NOISY, doc)})


@lowers("gaussian_noise", kind="backward")
def gaussian_noise_backward(site):
    return gradient_through(site, site.group.nodes[0].of)
