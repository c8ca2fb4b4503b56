"""conv2d on the hand-written kernels of kernels/cpu/conv.py and conv_wide.py (im2col and one
BLAS product per sample), with generated epilogues for activations other than relu, which
the kernels apply themselves on their way out (forward) and in (backward)."""
from __future__ import annotations

from . import Call, Extern, lowers
from ._common import conv_geometry, pool_geometry


def _activation_epilogue(site, name, epi, pre):
    """The activation of a conv's output (the kernel added the bias): in place in y, or, when
    the activation's backward needs its input, y = act(pre). Named by the activation: the
    codegen keeps one kernel for every conv whose activation code is the same."""
    source = "pref" if pre else "yf"
    body = ["    yf = _flat(y)"] + (["    pref = _flat(pre)"] if pre else []) + \
           ["    for i in range(yf.size):", f"        yf[i] = {site.act(epi, f'{source}[i]')}"]
    what = site.node(epi).op.name
    return site.njit(name, ["y"] + (["pre"] if pre else []), body,
                     f"{what} over a conv output" + (", from pre" if pre else ", in place"))


def _kernel_relu(site, epi) -> bool:
    """Is the fused activation relu, which conv2d_forward applies in its copy back and
    conv2d_backward takes the gradient through on its way in (no kernel of ours for either)?"""
    if not epi or site.keeps_pre(epi):
        return False
    op = site.node(epi).op
    return op.name == "relu" and op.scalar == ("x if x > 0 else 0", "gy if y > 0 else 0")


def grouped(site, n) -> bool:
    """Is conv2d node `n` grouped? The hand-written kernels convolve every channel with every
    filter, so a grouped conv declines (None) and its group runs the numpy rule."""
    return site.node(n).attrs.get("groups", 1) > 1


def runs_wide(site) -> bool:
    """Is the group at `site` a conv2d that evaluate and predict run on conv2d_forward_wide,
    which unfolds the input in runs of whole padded rows (the pipeline's cpu `layout` pass;
    training keeps conv2d_forward, whose columns the backward reads)? For stride and
    dilation 1, a padded input (the runs of conv2d_forward's im2col are then short and
    clipped by the padding) and a padded width at most 1.5 times the output's (the wide
    GEMM's extra work): there the wide form was faster for every padded 3x3 and 5x5 conv
    measured. Unpadded, the columns cost about as much both ways (a 1x1 conv's too) and the
    extra work decides: LeNet-5's second layer (5x5 on 12x12, 1.5 times the work) was slower
    wide, its first no faster."""
    n = site.group.anchor
    if site.group.kind != "forward" or getattr(site.node(n).op, "name", None) != "conv2d":
        return False
    if grouped(site, n):
        return False
    sh, sw, pt, pb, pl, pr, dh, dw = conv_geometry(site, n)
    _, _, w = site.shape(site.node(n).inputs[0])
    _, _, wo = site.shape(n)
    return (sh, sw, dh, dw) == (1, 1, 1, 1) and pt + pb + pl + pr > 0 \
        and 2 * (w + pl + pr) <= 3 * wo


@lowers("conv2d", kind="forward", calls=("_conv.conv2d_forward", "_conv_wide.conv2d_forward_wide"))
def conv2d_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    if grouped(site, n):
        return None
    d = site.node(n)
    c, h, w = site.shape(d.inputs[0])
    f, ho, wo = site.shape(n)
    kh, kw = d.attrs.kernel
    b = site.param(d.params["b"]) if "b" in d.params else "_none1"
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    pool = site.group.meta.get("pool")          # pooled in the copy back (pools_in_copy_back)
    out = site.val(pool or epi or n)
    sh, sw, pt, pb, pl, pr, dh, dw = geo = conv_geometry(site, n)
    relu = _kernel_relu(site, epi)
    # with stride 1 and no dilation every input value reaches an output, so the kernel's
    # note of non-finite values can stand in for the scan of a network input
    if (sh, sw, dh, dw) == (1, 1, 1, 1):
        site.check_input(d.inputs[0])
    x, weight = site.val(d.inputs[0]), site.param(d.params["W"])
    if site.gen.mode != "train" and site.group.name in site.gen.wide:
        wp = w + pl + pr                            # per sample: the columns, the padded copy
        padded = (h + pt + pb) * wp * c + kw if pt + pb + pl + pr else 0
        cols = site.scratch("cols", (c * kh * kw * ho * wp + padded,))
        ybuf = site.scratch("ybuf", (f, ho * wp), layout="cols")
        call = Call("_conv_wide.conv2d_forward_wide", [x, weight, b, pre or out, cols, ybuf, relu,
                                                  2 if pool else 1, pt, pb, pl, pr])
    else:
        cols = site.scratch("cols", (c * kh * kw, ho * wo), layout="cols")
        ybuf = site.scratch("ybuf", (f, ho * wo), layout="cols")
        keep = site.gen.mode == "train"                # the backward reads the columns
        call = Call("_conv.conv2d_forward", [x, weight, b, pre or out, cols, ybuf, keep, relu,
                                             2 if pool else 1, *geo])
    if pool:
        call.note = f"and {pool} (maxpool2d 2x2)"
    out_ = Extern([call])
    if epi and not relu:
        name = f"k_{site.node(epi).op.name}_epilogue"
        out_.helpers[name] = _activation_epilogue(site, name, epi, pre)
        out_.calls.append(Call(name, [out] + ([pre] if pre else [])))
    return out_


def pools_in_copy_back(site, pool_site) -> bool:
    """Can conv2d_forward (or conv2d_forward_wide) pool the output of conv group `site` in
    its copy back, for the maxpool2d group `pool_site` that reads it alone? For a conv2d
    with relu (the kernel's) or no activation, an even output height and width, and a 2x2
    pooling at stride 2 without padding. (Asked for evaluate and predict only.)"""
    n, epi = site.group.anchor, site.group.epilogue
    if site.node(n).op.name != "conv2d" or grouped(site, n) or \
            (epi and not _kernel_relu(site, epi)):
        return False
    p = pool_site.group.anchor
    if site.node(p).op.name != "maxpool2d" or site.node(p).inputs != [epi or n]:
        return False
    _, ho, wo = site.shape(n)
    return ho % 2 == 0 and wo % 2 == 0 and pool_geometry(pool_site, p) == (2, 2, 2, 2, 0, 0,
                                                                             0, 0)


@lowers("conv2d", kind="backward", calls=("_conv.conv2d_backward",))
def conv2d_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    if grouped(site, n):
        return None
    d = site.node(n)
    c, h, w = site.shape(d.inputs[0])
    f, ho, wo = site.shape(n)
    kh, kw = d.attrs.kernel
    gy = site.grad(epi or n)
    out = Extern([])
    relu = _kernel_relu(site, epi)
    relu_out = site.val(epi) if relu else "_none4"
    if epi and not relu:
        what = site.node(epi).op.name
        name = f"k_d_{what}"
        names = {"gy": "gyf[i]", "y": "yf[i]", "x": "xf[i]"}
        body = ["    gyf = _flat(gy)", "    yf = _flat(y)", "    xf = _flat(x)",
                "    for i in range(gyf.size):",
                f"        gyf[i] = {site.act_grad(epi, names)}"]
        out.helpers[name] = site.njit(name, ["gy", "y", "x"], body,
                                      f"backward of {what} over a conv output, in place in gy")
        x_for = site.val(n) if site.keeps_pre(epi) else site.val(epi)
        out.calls.append(Call(name, [gy, site.val(epi), x_for]))
    slots = site.param_slots(n)
    gw = site.pgrad(slots["W"]) if "W" in slots else "_none4"
    gb = site.pgrad(slots["b"]) if "b" in slots else "_none1"
    gx = site.input_grad(n, 0) or "_none4"
    cols = site.scratch("cols", (c * kh * kw, ho * wo), layout="cols")   # forward left them
    gybuf = site.scratch("gybuf", (f, ho * wo), layout="cols")
    # the weight gradient's transpose, where conv2d_backward takes that form (MKL runs it
    # faster for these filter and window sizes)
    from ....kernels.cpu.conv import GWT_FILTERS, GWT_ROWS
    gwt = site.scratch("gwt", (c * kh * kw * f,), layout="fixed") \
        if "W" in slots and f > GWT_FILTERS and c * kh * kw < GWT_ROWS else "_none1"
    out.calls.append(Call("_conv.conv2d_backward",
                          [None, gy, relu_out, site.param(d.params["W"]), gw, gb, gx, cols,
                           gybuf, gwt, *conv_geometry(site, n)]))
    return out
