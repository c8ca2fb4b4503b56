"""conv1d on conv2d's hand-written kernels (kernels/cpu/conv.py) at a height of 1: its
(N, C, L) arrays go in as (N, C, 1, L) views and its weight (F, C, k) as (F, C, 1, k), no
copies, so that the kernels compile once for both ops (the views are C-contiguous arrays of
the same rank and dtype as a conv2d's). Stride, padding and dilation go to the width.
Activations as conv2d's (_conv_acts)."""
from __future__ import annotations

from ....ops import _conv
from . import Call, Extern, lowers
from ._common import param_or
from ._conv_acts import add_activation, add_activation_grad, kernel_relu


def _h1(name: str) -> str:
    """Buffer `name` (N, C, L), or a weight (F, C, k), with a height of 1: a view."""
    return f"{name}[:, :, None]"


def conv1d_geometry(site, n) -> tuple:
    """(sh, sw, pt, pb, pl, pr, dh, dw) of conv1d node n as a conv2d of height 1."""
    d = site.node(n)
    a = d.attrs
    _, length = site.shape(d.inputs[0])
    _, pl, pr = _conv.out_size(length, a.kernel[0], a.stride[0], a.padding, 0,
                               dilation=a.dilation[0], axis_name="length")
    return (1, a.stride[0], 0, 0, pl, pr, 1, a.dilation[0])


@lowers("conv1d", kind="forward", calls=("_conv.conv2d_forward",))
def conv1d_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    x = d.inputs[0]
    c, _ = site.shape(x)
    f, lo = site.shape(n)
    k = d.attrs.kernel[0]
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    out = site.val(epi or n)
    geo = conv1d_geometry(site, n)
    if geo[1] == geo[7] == 1:       # every input value reaches an output (see conv2d.py)
        site.check_input(x)
    cols = site.scratch("cols", (c * k, lo), layout="cols")
    ybuf = site.scratch("ybuf", (f, lo), layout="cols")
    keep = site.gen.mode == "train"                # the backward reads the columns
    ext = Extern([Call("_conv.conv2d_forward",
                       [_h1(site.val(x)), _h1(site.param(d.params["W"])),
                        param_or(site, n, "b", "_none1"), _h1(pre or out), cols, ybuf, keep,
                        kernel_relu(site, epi), 1, *geo])])
    add_activation(site, ext, epi, out, pre)
    return ext


@lowers("conv1d", kind="backward", calls=("_conv.conv2d_backward",))
def conv1d_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    c, _ = site.shape(d.inputs[0])
    f, lo = site.shape(n)
    k = d.attrs.kernel[0]
    gy = site.grad(epi or n)
    ext = Extern([])
    add_activation_grad(site, ext, n, epi, gy)
    relu_out = _h1(site.val(epi)) if kernel_relu(site, epi) else "_none4"
    slots = site.param_slots(n)
    gw = _h1(site.pgrad(slots["W"])) if "W" in slots else "_none4"
    gb = site.pgrad(slots["b"]) if "b" in slots else "_none1"
    gx = site.input_grad(n, 0)
    cols = site.scratch("cols", (c * k, lo), layout="cols")     # the forward left them
    gybuf = site.scratch("gybuf", (f, lo), layout="cols")
    from ....kernels.cpu.conv import GWT_FILTERS, GWT_ROWS
    gwt = site.scratch("gwt", (c * k * f,), layout="fixed") \
        if "W" in slots and f > GWT_FILTERS and c * k < GWT_ROWS else "_none1"
    ext.calls.append(Call("_conv.conv2d_backward",
                          [None, _h1(gy), relu_out, _h1(site.param(d.params["W"])), gw, gb,
                           _h1(gx) if gx else "_none4", cols, gybuf, gwt,
                           *conv1d_geometry(site, n)]))
    return ext
