"""batchnorm on the GPU (kernels/cuda/norm.py): in training one block per channel computes
the batch's statistics with shared-memory tree reductions, moves the running statistics
(layer state, which CUDAExecutor copies in before a run and back after a training run,
run_state.py) and keeps x_hat and inv_std for the backward, which sums the gradients of
gamma and beta per channel the same way; evaluate and predict normalize with the running
statistics, a thread per value."""
from __future__ import annotations

from . import Call, Extern, lowers


@lowers("batchnorm", kind="forward",
        calls=("_norm.batchnorm_forward_train", "_norm.batchnorm_forward_eval"))
def batchnorm_forward(site):
    n = site.group.anchor
    d = site.node(n)
    x, y = site.val(d.inputs[0]), site.val(n)
    gamma = site.param(d.params["gamma"])
    beta = site.param(d.params["beta"]) if "beta" in d.params else "None"
    rm, rv = site.state(n, "running_mean"), site.state(n, "running_var")
    a = d.attrs
    if site.gen.mode != "train":
        return Extern([Call("_norm.batchnorm_forward_eval",
                            [x, gamma, beta, y, "None", "None", rm, rv, repr(a.eps)],
                            note="x_hat and inv_std not kept")])
    x_hat = site.scratch("x_hat", site.shape(n))
    inv = site.scratch("inv_std", site.shape(n)[:1], layout="fixed")
    return Extern([Call("_norm.batchnorm_forward_train",
                        [x, gamma, beta, y, x_hat, inv, rm, rv, repr(a.momentum),
                         repr(a.eps)])])


@lowers("batchnorm", kind="backward", calls=("_norm.batchnorm_backward",))
def batchnorm_backward(site):
    n = site.group.anchor
    d = site.node(n)
    slots = site.param_slots(n)
    gx = site.input_grad(n, 0)
    if not (gx or slots):
        return None
    x_hat = site.scratch("x_hat", site.shape(n))
    inv = site.scratch("inv_std", site.shape(n)[:1], layout="fixed")
    grads = [site.pgrad(slots[p]) if p in slots else "None" for p in ("gamma", "beta")]
    return Extern([Call("_norm.batchnorm_backward",
                        [site.grad(n), x_hat, site.param(d.params["gamma"]), inv,
                         gx or "None"] + grads + ["True"])])
