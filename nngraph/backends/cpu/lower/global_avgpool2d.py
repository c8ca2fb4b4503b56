"""global_avgpool2d on the hand-written kernels of kernels/cpu/pool.py: one mean per channel,
(N, C, H, W) -> (N, C), and its gradient spread evenly back over the plane."""
from __future__ import annotations

from . import Call, Extern, lowers


@lowers("global_avgpool2d", kind="forward", calls=("_pool.global_avgpool2d_forward",))
def global_avgpool2d_forward(site):
    n = site.group.anchor
    return Extern([Call("_pool.global_avgpool2d_forward",
                        [site.val(site.node(n).inputs[0]), site.val(n)])])


@lowers("global_avgpool2d", kind="backward", calls=("_pool.global_avgpool2d_backward",))
def global_avgpool2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    return Extern([Call("_pool.global_avgpool2d_backward", [site.grad(n), gx])])
