"""conv2d_transpose on the hand-written kernels of kernels/cpu/conv.py, which run it as the
adjoint of a conv2d (its forward is that conv2d's input gradient) through conv2d_forward and
conv2d_backward, called with the arguments codegen gives a conv2d's: a network with both ops
compiles those once. Bias and relu are applied by the kernels, other activations by the
generated helpers of conv2d's rules (_conv_acts)."""
from __future__ import annotations

from ....ops.conv2d_transpose import _axis
from . import Call, Extern, lowers
from ._common import param_or
from ._conv_acts import add_activation, add_activation_grad, kernel_relu


def transpose_geometry(site, n) -> tuple:
    """(sh, sw, pt, pb, pl, pr) of conv2d_transpose node n: the padding of the conv2d whose
    input gradient it is, read off the op's own crop of its full scatter. pb and pr are
    negative where output_padding extends the output past the scatter (zeros there)."""
    d = site.node(n)
    a = d.attrs
    _, h, w = site.shape(d.inputs[0])
    (_, pt, pb), (_, pl, pr) = _axis(a, h, 0), _axis(a, w, 1)
    return (a.stride[0], a.stride[1], pt, pb, pl, pr)


def _every_input_reaches_an_output(site, n, geo) -> bool:
    """Does every input value add into some output value? Input row i lands on rows
    i*sh .. i*sh + kh - 1 of the full scatter, of which the crop keeps rows pt .. end - pb:
    the first and last input rows (so all) reach one when pt and pb are less than kh."""
    kh, kw = site.node(n).attrs.kernel
    _, _, pt, pb, pl, pr = geo
    return pt < kh and pb < kh and pl < kw and pr < kw


@lowers("conv2d_transpose", kind="forward", calls=("_conv.conv2d_transpose_forward",))
def conv2d_transpose_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    c, h, w = site.shape(d.inputs[0])
    f = site.shape(n)[0]
    kh, kw = d.attrs.kernel
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    out = site.val(epi or n)
    geo = transpose_geometry(site, n)
    # the kernel notes non-finite outputs; where every input value reaches one, that note
    # stands in for the scan of a network input (Site.check_input)
    if _every_input_reaches_an_output(site, n, geo):
        site.check_input(d.inputs[0])
    cols = site.scratch("gcols", (f * kh * kw, h * w), layout="cols")
    xbuf = site.scratch("xrows", (c, h * w), layout="cols")
    ext = Extern([Call("_conv.conv2d_transpose_forward",
                       [site.val(d.inputs[0]), site.param(d.params["W"]),
                        param_or(site, n, "b", "_none1"), pre or out, cols, xbuf,
                        kernel_relu(site, epi), *geo])])
    add_activation(site, ext, epi, out, pre)
    return ext


@lowers("conv2d_transpose", kind="backward", calls=("_conv.conv2d_transpose_backward",))
def conv2d_transpose_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    x = d.inputs[0]
    c, h, w = site.shape(x)
    f = site.shape(n)[0]
    kh, kw = d.attrs.kernel
    gy = site.grad(epi or n)
    ext = Extern([])
    add_activation_grad(site, ext, n, epi, gy)
    relu_out = site.val(epi) if kernel_relu(site, epi) else "_none4"
    slots = site.param_slots(n)
    gw = site.pgrad(slots["W"]) if "W" in slots else "_none4"
    gb = site.pgrad(slots["b"]) if "b" in slots else "_none1"
    # the kernel computes gx first and the weight gradient from the columns that leaves: where
    # the input's gradient is not wanted (a network input) it goes to scratch
    gx = site.input_grad(n, 0) or \
        (site.scratch("gx", (c, h, w)) if "W" in slots else "_none4")
    cols = site.scratch("cols", (f * kh * kw, h * w), layout="cols")
    xbuf = site.scratch("xbuf", (c, h * w), layout="cols")
    from ....kernels.cpu.conv import GWT_FILTERS, GWT_ROWS    # conv2d_backward's gW.T rule
    gwt = site.scratch("gwt", (f * kh * kw * c,), layout="fixed") \
        if "W" in slots and c > GWT_FILTERS and f * kh * kw < GWT_ROWS else "_none1"
    ext.calls.append(Call("_conv.conv2d_transpose_backward",
                          [site.val(x), site.param(d.params["W"]), gy, relu_out, gw, gb, gx,
                           cols, xbuf, gwt, *transpose_geometry(site, n)]))
    return ext
