"""embedding on the GPU (kernels/cuda/embedding.py): rows gathered forward, a thread per
value; backward, the weight's gradient zeroed and each value of the output's gradient
added into its token's row with an atomic add (tokens repeat)."""
from __future__ import annotations

from . import Call, Extern, lowers


@lowers("embedding", kind="forward", calls=("_embedding.embedding_forward",))
def embedding_forward(site):
    n = site.group.anchor
    d = site.node(n)
    return Extern([Call("_embedding.embedding_forward",
                        [site.val(d.inputs[0]), site.param(d.params["W"]), site.val(n)])])


@lowers("embedding", kind="backward", calls=("_embedding.embedding_backward",))
def embedding_backward(site):
    n = site.group.anchor
    d = site.node(n)
    slots = site.param_slots(n)
    if "W" not in slots:
        return None
    return Extern([Call("_embedding.embedding_backward",
                        [site.val(d.inputs[0]), site.grad(n), site.pgrad(slots["W"])])])
