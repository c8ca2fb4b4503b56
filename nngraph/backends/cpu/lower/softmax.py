"""softmax and log_softmax over the last axis on the hand-written kernels of
kernels/cpu/softmax.py, which take (rows, classes) arrays.

Both are reductions, so neither is fused into the layer before it: `activation: softmax` on a
dense layer is a group of its own after the layer's, as is a softmax layer.
"""
from __future__ import annotations

from . import Call, Extern, lowers


def as_rows(site, buffer, n) -> str:
    """`buffer` (the value or gradient of node n) as the kernels' (rows, classes) array: the
    buffer itself for a vector per sample, else a reshape in the driver, a view (arena
    buffers and the batch's arrays are C-contiguous, so it never copies, and the kernels
    write through it)."""
    shape = site.shape(n)
    return buffer if len(shape) == 1 else f"{buffer}.reshape(-1, {shape[-1]})"


@lowers("softmax", "log_softmax", kind="forward",
        calls=("_softmax.softmax_forward", "_softmax.log_softmax_forward"))
def softmax_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    x = d.inputs[0]
    return Extern([Call(f"_softmax.{d.op.name}_forward",
                        [as_rows(site, site.val(x), x), as_rows(site, site.val(n), n)])])


@lowers("softmax", "log_softmax", kind="backward",
        calls=("_softmax.softmax_backward", "_softmax.log_softmax_backward"))
def softmax_backward(site):
    """Both backward rules read the output y (not x) and the incoming gradient."""
    b = site.group.nodes[0]
    n = b.of
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    return Extern([Call(f"_softmax.{site.node(n).op.name}_backward",
                        [as_rows(site, site.val(n), n), as_rows(site, site.grad(n), n),
                         as_rows(site, gx, n)])])
