"""conv2d as im2col and one product for the batch (kernels/cuda/conv.py), with a generated
epilogue that adds the bias, applies the activation and writes the output in NCHW order
in one pass; backward: a generated prologue that takes the activation's gradient into the
product's (F, N*Ho*Wo) order, the bias gradient as row sums, then the weight's and the
input's gradients (the weight's first: the input's reuses the columns)."""
from __future__ import annotations

from ...cpu.lower._common import conv_geometry
from ...cpu.lower.conv2d import grouped
from . import Call, Extern, launcher, lowers

_AT = ["    hw = {a}.shape[2] * {a}.shape[3]", "    p = i % hw",
       "    c = (i // hw) % {a}.shape[1]", "    n = i // (hw * {a}.shape[1])",
       "    r, s = p // {a}.shape[3], p % {a}.shape[3]", "    k = n * hw + p"]


def _at(a: str) -> list:
    """Lines giving thread i's (n, c, r, s) in NCHW array `a`, and k, its column in the
    product's (F, N*Ho*Wo) order."""
    return [line.format(a=a) for line in _AT]


def _columns(site, n):
    d = site.node(n)
    c, _, _ = site.shape(d.inputs[0])
    f, ho, wo = site.shape(n)
    kh, kw = d.attrs.kernel
    return (site.scratch("cols", (c * kh * kw, ho * wo), layout="cols"),
            site.scratch("ybuf", (f, ho * wo), layout="cols"))


def _same(buffer: str, shape) -> str:
    return buffer


def epilogue(site, n, epi, ybuf: str, view=_same, note: str = ""):
    """(call, source) of the generated helper that adds conv n's bias to the product's
    (F, N*P) output ybuf, applies the fused activation `epi` (if any) and writes the output
    in NCHW order (keeping the value before the activation where its gradient needs it).
    `view(buffer, shape)`: how the helper sees an output buffer (conv1d: a height of 1)."""
    d = site.node(n)
    shape = site.shape(n)
    pre = view(site.val(n), shape) if epi and site.keeps_pre(epi) else None
    bias = "b" in d.params
    name = f"k_{site.group.name}_epilogue"
    body = _at("y") + ["    v = ybuf[c, k]" + (" + b[c]" if bias else "")]
    if pre:
        body.append("    pre[n, c, r, s] = v")
    body.append(f"    y[n, c, r, s] = {site.act(epi, 'v') if epi else 'v'}")
    args = ["ybuf", "y"] + (["b"] if bias else []) + (["pre"] if pre else [])
    call = Call(name, [ybuf, view(site.val(epi or n), shape)] +
                ([site.param(d.params["b"])] if bias else []) + ([pre] if pre else []))
    what = (" plus bias" if bias else "") + (f", {site.node(epi).op.name}" if epi else "")
    doc = f"{n}'s output{what}, in NCHW order{note}"
    return call, launcher(name, args, body, "y.size", doc)


def prologue(site, n, epi, gybuf: str, view=_same):
    """(call, source) of the generated helper that writes conv n's output gradient, through
    the fused activation's if any, into gybuf in the product's (F, N*P) order."""
    shape = site.shape(n)
    gy = view(site.grad(epi or n), shape)
    name = f"k_{site.group.name}_prologue"
    if epi:
        names = {"gy": "gy[n, c, r, s]", "y": "y[n, c, r, s]", "x": "pre[n, c, r, s]"}
        keeps = site.keeps_pre(epi)
        args = ["gy", "gybuf", "y"] + (["pre"] if keeps else [])
        passed = [gy, gybuf, view(site.val(epi), shape)] + \
            ([view(site.val(n), shape)] if keeps else [])
        body = _at("gy") + [f"    gybuf[c, k] = {site.act_grad(epi, names)}"]
        doc = f"{site.node(epi).op.name}'s gradient over {n}'s output, in the product's order"
    else:
        args, passed = ["gy", "gybuf"], [gy, gybuf]
        body = _at("gy") + ["    gybuf[c, k] = gy[n, c, r, s]"]
        doc = f"{n}'s output gradient, in the product's order"
    return Call(name, passed), launcher(name, args, body, "gy.size", doc)


@lowers("conv2d", kind="forward", calls=("_conv.conv2d_forward",))
def conv2d_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    if grouped(site, n):
        return None
    d = site.node(n)
    cols, ybuf = _columns(site, n)
    call, source = epilogue(site, n, epi, ybuf)
    return Extern([Call("_conv.conv2d_forward", [site.val(d.inputs[0]),
                                                 site.param(d.params["W"]), cols, ybuf,
                                                 *conv_geometry(site, n)]), call],
                  {call.function: source})


@lowers("conv2d", kind="backward",
        calls=("_conv.conv2d_weight_grad", "_conv.conv2d_input_grad", "_reduce.row_sums"))
def conv2d_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    if grouped(site, n):
        return None
    d = site.node(n)
    cols, gybuf = _columns(site, n)
    first, source = prologue(site, n, epi, gybuf)
    calls = [first]
    slots = site.param_slots(n)
    if "b" in slots:
        calls.append(Call("_reduce.row_sums", [gybuf, site.pgrad(slots["b"])]))
    if "W" in slots:
        calls.append(Call("_conv.conv2d_weight_grad", [gybuf, cols, site.pgrad(slots["W"])]))
    gx = site.input_grad(n, 0)
    if gx:
        calls.append(Call("_conv.conv2d_input_grad", [gybuf, site.param(d.params["W"]), cols,
                                                      gx, *conv_geometry(site, n)]))
    return Extern(calls, {first.function: source})
