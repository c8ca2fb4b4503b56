"""dense: y = act(x W + b) as one BLAS product and one loop; its backward in one kernel.

A dense layer with relu and one with no activation (the logits after relu layers) share one
kernel each way, relu switched by an argument: one compile fewer for the forward and one for
the backward, for a test per value that the branch predictor settles.
"""
from __future__ import annotations

from ....codegen.scalar import loop_nest, scalar_code
from ....ops.relu import OP as RELU
from . import Kernel, lowers

_RELU = (scalar_code(RELU.scalar[0], {}, {"x": "v"}),
         scalar_code(RELU.scalar[1], {}, {"gy": "gy[i0, i1]", "y": "y[i0, i1]"}))


def _relu_switch(site, epi) -> bool:
    """Does the dense group take relu as a switch (no activation, or relu)?"""
    return epi is None or site.node(epi).op.name == "relu"


@lowers("dense", kind="forward")
def dense_forward(site):
    """y = act(x W + b): BLAS into y, then one loop for bias and activation that also notes
    whether any value of x W + b is NaN or infinite, which the kernel returns. Where x is a
    network input, the driver adds it up (see Site.check_input)."""
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    if len(site.shape(d.inputs[0])) != 1:
        return None
    has_b = "b" in d.params
    out = site.val(epi or n)
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    packed = site.packed(d.params["W"])
    args = ["x", "W"] + (["Wp"] if packed else []) + (["b"] if has_b else []) + \
        (["pre"] if pre else []) + ["y"]
    body = ["    gemm_packed(x, W, Wp, y)" if packed else "    gemm(1.0, x, False, W, False, 0.0, y)"]
    checks = site.check_input(d.inputs[0])
    switch = bool(has_b or epi or checks) and _relu_switch(site, epi)
    if has_b or epi or checks:
        # not math.isfinite(v): numba computes it from v - v, which reassociation folds
        # to 0 once v is a sum; and a flag is much cheaper than a count of bad values
        inner = ["v = y[i0, i1]" + (" + b[i1]" if has_b else ""),
                 "bad |= not (abs(v) < math.inf)"]
        if pre:
            inner.append("pre[i0, i1] = v")
        if switch:
            inner.append(f"y[i0, i1] = ({_RELU[0]}) if relu else v")
        elif has_b or epi:
            inner.append(f"y[i0, i1] = {site.act(epi, 'v') if epi else 'v'}")
        body += ["    bad = False"] + loop_nest(["y.shape[0]", "y.shape[1]"], inner) + \
            ["    return bad"]
    else:
        body.append("    return False")
    call = [site.val(d.inputs[0]), site.param(d.params["W"])] + \
        ([packed] if packed else []) + ([site.param(d.params["b"])] if has_b else []) + \
        ([pre] if pre else []) + [out]
    if switch:
        args.append("relu")
        call.append(str(epi is not None))
    return Kernel(args, body, call, returns=True)


# A dense layer with relu and one with no activation (the logits after relu layers) share
# one kernel, relu switched by an argument: one compile fewer for the forward and one for
# the backward, for a test per value that the branch predictor settles.


@lowers("dense", kind="backward")
def dense_backward(site):
    """g = act'(gy); gW = xᵀ g; gb = Σ g; gx = g Wᵀ — the activation's backward is applied to
    the incoming gradient in place, so it costs no extra pass over memory."""
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    if len(site.shape(d.inputs[0])) != 1:
        return None
    x = d.inputs[0]
    gy = site.grad(epi or n)
    pslots = site.param_slots(n)
    want_x = site.input_grad(n, 0)
    args, call, body = ["gy"], [gy], []
    switch = _relu_switch(site, epi)
    if switch:
        args.append("y")
        call.append(site.val(epi or n))
        body += ["    if relu:"] + ["    " + line for line in loop_nest(
            ["gy.shape[0]", "gy.shape[1]"], [f"gy[i0, i1] = {_RELU[1]}"])]
    elif epi:
        names = {"gy": "gy[i0, i1]", "y": "y[i0, i1]", "x": "pre[i0, i1]"}
        args.append("y")
        call.append(site.val(epi))
        if site.keeps_pre(epi):
            args.append("pre")
            call.append(site.val(n))
        body += loop_nest(["gy.shape[0]", "gy.shape[1]"],
                           [f"gy[i0, i1] = {site.act_grad(epi, names)}"])
    args += ["x"]
    call += [site.val(x)]
    if "W" in pslots:
        args.append("gW")
        call.append(site.pgrad(pslots["W"]))
        body.append("    gemm(1.0, x, True, gy, False, 0.0, gW)")
    if "b" in pslots:
        args.append("gb")
        call.append(site.pgrad(pslots["b"]))
        body += ["    for j in range(gb.shape[0]):", "        gb[j] = 0",
                 "    for i in range(gy.shape[0]):", "        for j in range(gy.shape[1]):",
                 "            gb[j] += gy[i, j]"]
    if want_x:
        args += ["W", "gx"]
        call += [site.param(d.params["W"]), want_x]
        body.append("    gemm(1.0, gy, False, W, True, 0.0, gx)")
    if switch:
        args.append("relu")
        call.append(str(epi is not None))
    return Kernel(args, body, call)
