"""embedding on the hand-written kernels of kernels/cpu/embedding.py: rows gathered forward,
scattered and added backward."""
from __future__ import annotations

from . import Call, Extern, lowers


@lowers("embedding", kind="forward", calls=("_embedding.embedding_forward",))
def embedding_forward(site):
    n = site.group.anchor
    d = site.node(n)
    idx, y = site.val(d.inputs[0]), site.val(n)
    dim = d.attrs.dim
    return Extern([Call("_embedding.embedding_forward", [f"{idx}.reshape(-1)",
                                                   site.param(d.params["W"]),
                                                   f"{y}.reshape(-1, {dim})"])])


@lowers("embedding", kind="backward", calls=("_embedding.embedding_backward",))
def embedding_backward(site):
    n = site.group.anchor
    d = site.node(n)
    slots = site.param_slots(n)
    if "W" not in slots:
        return None
    dim = d.attrs.dim
    return Extern([Call("_embedding.embedding_backward", [f"{site.val(d.inputs[0])}.reshape(-1)",
                                                    f"{site.grad(n)}.reshape(-1, {dim})",
                                                    site.pgrad(slots["W"])])])
