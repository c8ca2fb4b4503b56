"""conv1d on conv2d's kernels (kernels/cuda/conv.py) at a height of 1, as the CPU backend
lifts it (backends/cpu/lower/conv1d.py, whose geometry this takes): its (N, C, L) buffers go
in as (N, C, 1, L) views and its weight (F, C, k) as (F, C, 1, k), no copies; stride,
padding and dilation go to the width. Around im2col and the products run conv2d's generated
lines on those views (the epilogue: bias, activation, NCHW order; the prologue: the
activation's gradient in the product's order), so a conv1d and a conv2d with the same
activation share these kernels."""
from __future__ import annotations

from ...cpu.lower.conv1d import conv1d_geometry
from . import Call, Extern, launcher, lowers
from ._window import height1
from .conv2d import epilogue, prologue

_LIFTED = "(N, C, L) seen as (N, C, 1, L)"


def _weight(site, n, buffer: str) -> str:
    """Weight (or weight gradient) `buffer` (F, C, k) of conv1d n as (F, C, 1, k)."""
    d = site.node(n)
    c, _ = site.shape(d.inputs[0])
    return f"{buffer}.reshape({d.attrs.filters}, {c}, 1, {d.attrs.kernel[0]})"


def _columns(site, n, out: str):
    """The columns (C*k, N*Lo), which the backward reads, and the product's output `out`
    (F, N*Lo): ybuf forward, gybuf backward (planned apart: nothing passes between them)."""
    c, _ = site.shape(site.node(n).inputs[0])
    f, lo = site.shape(n)
    k = site.node(n).attrs.kernel[0]
    return (site.scratch("cols", (c * k, lo), layout="cols"),
            site.scratch(out, (f, lo), layout="cols"))


@lowers("conv1d", kind="forward", calls=("_conv.conv2d_forward",))
def conv1d_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    x = d.inputs[0]
    cols, ybuf = _columns(site, n, "ybuf")
    w = _weight(site, n, site.param(d.params["W"]))
    call, source = epilogue(site, n, epi, ybuf, height1, " (a height of 1)")
    return Extern([Call("_conv.conv2d_forward", [height1(site.val(x), site.shape(x)), w,
                                                 cols, ybuf, *conv1d_geometry(site, n)],
                        _LIFTED), call], {call.function: source})


@lowers("conv1d", kind="backward",
        calls=("_conv.conv2d_weight_grad", "_conv.conv2d_input_grad", "_reduce.row_sums"))
def conv1d_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    cols, gybuf = _columns(site, n, "gybuf")
    first, source = prologue(site, n, epi, gybuf, height1)
    calls = [first]
    slots = site.param_slots(n)
    if "b" in slots:
        calls.append(Call("_reduce.row_sums", [gybuf, site.pgrad(slots["b"])]))
    if "W" in slots:            # first: the input's gradient reuses the columns
        calls.append(Call("_conv.conv2d_weight_grad",
                          [gybuf, cols, _weight(site, n, site.pgrad(slots["W"]))]))
    gx = site.input_grad(n, 0)
    if gx:
        calls.append(Call("_conv.conv2d_input_grad",
                          [gybuf, _weight(site, n, site.param(d.params["W"])), cols,
                           height1(gx, site.shape(d.inputs[0])), *conv1d_geometry(site, n)],
                          _LIFTED))
    return Extern(calls, {first.function: source})
