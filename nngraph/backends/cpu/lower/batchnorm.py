"""batchnorm on the hand-written kernels of kernels/cpu/norm.py, over (N, C, everything else)."""
from __future__ import annotations

from . import Call, Extern, lowers
from ._common import param_or


def _ncs(name, channels):
    return f"{name}.reshape({name}.shape[0], {channels}, -1)"


@lowers("batchnorm", kind="forward",
        calls=("_norm.batchnorm_forward_train", "_norm.batchnorm_forward_eval"))
def batchnorm_forward(site):
    n = site.group.anchor
    d = site.node(n)
    c = site.shape(n)[0]
    x, y = _ncs(site.val(d.inputs[0]), c), _ncs(site.val(n), c)
    gamma, beta = param_or(site, n, "gamma", "_none1"), param_or(site, n, "beta", "_none1")
    rm, rv = site.state(n, "running_mean"), site.state(n, "running_var")
    x_hat = _ncs(site.scratch("x_hat", site.shape(n)), c)
    inv = site.scratch("inv_std", (c,), layout="fixed")
    a = d.attrs
    if site.gen.mode == "train":
        return Extern([Call("_norm.batchnorm_forward_train",
                            [x, gamma, beta, y, x_hat, inv, rm, rv, a.momentum, a.eps])])
    return Extern([Call("_norm.batchnorm_forward_eval",
                        [x, gamma, beta, y, x_hat, inv, rm, rv, a.eps])])


@lowers("batchnorm", kind="backward", calls=("_norm.batchnorm_backward",))
def batchnorm_backward(site):
    n = site.group.anchor
    c = site.shape(n)[0]
    slots = site.param_slots(n)
    if "gamma" not in slots:
        return None
    gx = site.input_grad(n, 0)
    gx = _ncs(gx, c) if gx else "_none3"
    x_hat = _ncs(site.scratch("x_hat", site.shape(n)), c)
    inv = site.scratch("inv_std", (c,), layout="fixed")
    gbeta = site.pgrad(slots["beta"]) if "beta" in slots else "_none1"
    return Extern([Call("_norm.batchnorm_backward",
                        [_ncs(site.grad(n), c), x_hat, site.param(site.node(n).params["gamma"]),
                         inv, gx, site.pgrad(slots["gamma"]), gbeta, True])])
