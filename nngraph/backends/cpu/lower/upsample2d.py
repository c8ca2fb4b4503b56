"""upsample2d (nearest neighbour) on the hand-written kernels of kernels/cpu/pool.py: each
input cell copied into an sh x sw block, and its gradient the sum over that block. The
factors are passed, not generated: one compiled kernel serves every upsampling."""
from __future__ import annotations

from . import Call, Extern, lowers


@lowers("upsample2d", kind="forward", calls=("_pool.upsample2d_forward",))
def upsample2d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    sh, sw = d.attrs.size
    return Extern([Call("_pool.upsample2d_forward", [site.val(d.inputs[0]), site.val(n),
                                                    sh, sw], f"factors {sh}x{sw}")])


@lowers("upsample2d", kind="backward", calls=("_pool.upsample2d_backward",))
def upsample2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    sh, sw = site.node(n).attrs.size
    return Extern([Call("_pool.upsample2d_backward", [site.grad(n), gx, sh, sw],
                        f"factors {sh}x{sw}")])
