"""conv2d_transpose as conv2d's adjoint (kernels/cuda/conv.py): the product W.T @ x into
columns, folded onto the output by col2im, then a generated epilogue for the bias and the
activation; backward: the activation's gradient in place, the bias gradient as channel
sums, the gradient's windows (im2col), and the weight's and the input's gradients as one
product each."""
from __future__ import annotations

from ....ops.conv2d_transpose import _geometry
from . import Call, Extern, launcher, lowers
from ._window import split


def _setup(site, n):
    """(scratch names, literal geometry arguments) of transposed conv n."""
    d = site.node(n)
    c, h, w = site.shape(d.inputs[0])
    f = site.shape(n)[0]
    kh, kw = d.attrs.kernel
    _, _, ((pt, _), (pl, _)) = _geometry(d.attrs, (c, h, w))
    scratch = {"xrows": site.scratch("xrows", (c, h * w), layout="cols"),
               "cols": site.scratch("cols", (f * kh * kw, h * w), layout="cols")}
    return scratch, (kh, kw, h, w, *d.attrs.stride, pt, pl)


@lowers("conv2d_transpose", kind="forward", calls=("_conv.conv2d_transpose_forward",))
def conv2d_transpose_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    scratch, (_, _, _, _, sh, sw, pt, pl) = _setup(site, n)
    out = site.val(epi or n)
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    target = pre or out
    calls = [Call("_conv.conv2d_transpose_forward",
                  [site.val(d.inputs[0]), site.param(d.params["W"]), scratch["xrows"],
                   scratch["cols"], target, sh, sw, pt, pl])]
    bias = "b" in d.params
    if not bias and not epi:
        return Extern(calls)
    name = f"k_{site.group.name}_epilogue"
    body = split("y", "r", "s") + ["    v = t[n, c, r, s]" + (" + b[c]" if bias else "")]
    if pre:
        body.append("    t[n, c, r, s] = v")
    body.append(f"    y[n, c, r, s] = {site.act(epi, 'v') if epi else 'v'}")
    args = ["t", "y"] + (["b"] if bias else [])
    calls.append(Call(name, [target, out] + ([site.param(d.params["b"])] if bias else [])))
    return Extern(calls, {name: launcher(name, args, body, "y.size",
                                         f"{n}'s bias and activation")})


@lowers("conv2d_transpose", kind="backward",
        calls=("_conv.conv2d_transpose_columns", "_conv.conv2d_transpose_weight_grad",
               "_conv.conv2d_transpose_input_grad", "_reduce.channel_sums"))
def conv2d_transpose_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    scratch, geo = _setup(site, n)
    gy = site.grad(epi or n)
    calls, helpers = [], {}
    if epi:
        name = f"k_{site.group.name}_act_grad"
        keeps = site.keeps_pre(epi)
        names = {"gy": "gy[n, c, r, s]", "y": "y[n, c, r, s]", "x": "pre[n, c, r, s]"}
        body = split("gy", "r", "s") + [f"    gy[n, c, r, s] = {site.act_grad(epi, names)}"]
        calls.append(Call(name, [gy, site.val(epi)] + ([site.val(n)] if keeps else [])))
        helpers[name] = launcher(name, ["gy", "y"] + (["pre"] if keeps else []), body,
                                 "gy.size", f"{site.node(epi).op.name}'s gradient, in place")
    slots = site.param_slots(n)
    if "b" in slots:
        calls.append(Call("_reduce.channel_sums", [gy, site.pgrad(slots["b"])]))
    calls.append(Call("_conv.conv2d_transpose_columns", [gy, scratch["cols"], *geo]))
    if "W" in slots:
        calls.append(Call("_conv.conv2d_transpose_weight_grad",
                          [scratch["xrows"], scratch["cols"], site.pgrad(slots["W"])]))
    gx = site.input_grad(n, 0)
    if gx:
        c, h, w = site.shape(d.inputs[0])
        gxrows = site.scratch("gxrows", (c, h * w), layout="cols")
        calls.append(Call("_conv.conv2d_transpose_input_grad",
                          [site.param(d.params["W"]), scratch["cols"], gxrows, gx]))
    return Extern(calls, helpers)
