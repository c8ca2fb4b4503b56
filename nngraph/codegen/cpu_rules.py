"""CPU code for each kind of group: what an op becomes in generated source.

Each rule receives a `Site` (buffer names, shapes, attributes of the group it emits) and
returns the source of one njit kernel plus the line the driver uses to call it. An op with
no rule here runs its numpy reference rule from the driver instead (correct, slower), so a
new op works on the CPU backend the day it is registered and gets fast when it gets a rule.
"""
from __future__ import annotations

from ..ops.base import Fusion
from ..ops.relu import OP as RELU
from . import cpu_kernel_rules
from .scalar import loop_nest, scalar_code


# ----------------------------------------------------------------------------- forward

def dense_forward(site):
    """y = act(x W + b): BLAS into y, then one loop for bias and activation that also notes
    whether any value of x W + b is NaN or infinite, which the kernel returns. Where x is a
    network input, the driver adds it up (see Site.check_input)."""
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    if len(site.shape(d["inputs"][0])) != 1:
        return None
    has_b = "b" in d["params"]
    out = site.val(epi or n)
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    packed = site.packed(d["params"]["W"])
    args = ["x", "W"] + (["Wp"] if packed else []) + (["b"] if has_b else []) + \
        (["pre"] if pre else []) + ["y"]
    body = ["    gemm_packed(x, W, Wp, y)" if packed else "    gemm(1.0, x, False, W, False, 0.0, y)"]
    checks = site.check_input(d["inputs"][0])
    switch = bool(has_b or epi or checks) and _relu_switch(site, epi)
    if has_b or epi or checks:
        # not math.isfinite(v): numba computes it from v - v, which reassociation folds
        # to 0 once v is a sum (0.3 us on 256x128, against 3 us for a count)
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
    call = [site.val(d["inputs"][0]), site.param(d["params"]["W"])] + \
        ([packed] if packed else []) + ([site.param(d["params"]["b"])] if has_b else []) + \
        ([pre] if pre else []) + [out]
    if switch:
        args.append("relu")
        call.append(str(epi is not None))
    return site.kernel(args, body, call, returns=True)


# A dense layer with relu and one with no activation (the logits after relu layers) share
# one kernel, relu switched by an argument: one compile fewer for the forward and one for
# the backward (0.14-0.25 s each, cold, on the 2-core machine), for a test per value that
# the branch predictor settles.
_RELU = (scalar_code(RELU.scalar[0], {}, {"x": "v"}),
         scalar_code(RELU.scalar[1], {}, {"gy": "gy[i0, i1]", "y": "y[i0, i1]"}))


def _relu_switch(site, epi) -> bool:
    """Does the dense group take relu as a switch (no activation, or relu)?"""
    return epi is None or site.node(epi)["op"].name == "relu"


def elementwise_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    if d["op"].scalar is None or len(d["inputs"]) != 1:
        return None
    body = ["xf = _flat(x)", "yf = _flat(y)",
            "for i in range(xf.size):",
            f"    yf[i] = {site.act(n, 'xf[i]')}"]
    return site.kernel(["x", "y"], ["    " + b for b in body],
                       [site.val(d["inputs"][0]), site.val(n)])


def copy_forward(site):
    """flatten / reshape: the same values in a new shape; a view of the input where the
    arena holds both (no kernel, no copy), else a copy."""
    n = site.group.nodes[0]
    d = site.node(n)
    x, y = site.val(d["inputs"][0]), site.val(n)
    if len(site.group.nodes) == 1 and site.alias(y, x):
        return "direct", [_view_note(y, x)], {}
    return site.kernel(_COPY_ARGS, _COPY, [x, y, "True"])


def _view_note(name, base):
    """The driver's line for a buffer that views another: a comment."""
    return f"# {name}: a view of {base} (no copy)"


# flatten / reshape and their backward: one kernel serves them all. Its arrays come in the
# same order both ways (a shaped as the op's input, b as its output), so that one compiled
# signature serves both directions (a signature each: 0.12-0.2 s more cold compile).
_COPY_ARGS = ["a", "b", "forward"]
_COPY = ["    af = _flat(a)", "    bf = _flat(b)",
         "    if forward:",
         "        for i in range(af.size):", "            bf[i] = af[i]",
         "    else:",
         "        for i in range(af.size):", "            af[i] = bf[i]"]


def add_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    k = len(d["inputs"])
    args = [f"x{j}" for j in range(k)] + ["y"]
    total = " + ".join(f"x{j}f[i]" for j in range(k))
    body = [f"    x{j}f = _flat(x{j})" for j in range(k)] + [
        "    yf = _flat(y)", "    for i in range(yf.size):", f"        yf[i] = {total}"]
    return site.kernel(args, body, [site.val(i) for i in d["inputs"]] + [site.val(n)])


# ----------------------------------------------------------------------------- losses

def _gradient_target(site, x):
    """Where a loss kernel writes d loss / d x: the gradient buffer in training; in evaluate,
    when training has the same kernel, a scratch buffer, so that evaluate runs that kernel
    and has none of its own to compile (the gradient of a batch of logits costs next to
    nothing beside the loss); None for a kernel without the gradient."""
    if not site.has_grad(x):
        return None
    if len(site.group.nodes) > 1:
        return site.grad(x)
    if site.gen.mode == "evaluate":
        return site.scratch("g", site.shape(x))
    return None


def softmax_xent_loss(site):
    """Loss and (in training) d loss / d logits in one pass over the logits."""
    n = site.group.anchor
    d = site.node(n)
    logits, label = d["inputs"]
    if len(site.shape(logits)) != 1 or site.node(label)["dtype"] not in ("int64", "int32"):
        return None
    mean = d["attrs"]["reduction"] == "mean"
    into = _gradient_target(site, logits)
    train = into is not None
    args = ["x", "t", "g"] if train else ["x", "t"]
    body = [
        "    n, k = x.shape",
        "    total = 0.0",
        # the gradient carries the loss's weight: d(w·loss)/dx
        f"    scale = _f({float(d['attrs']['weight'])!r}){' / n' if mean else ''}",
        "    for i in range(n):",
        "        m = x[i, 0]",
        "        for j in range(1, k):",
        "            m = x[i, j] if x[i, j] > m else m",   # (builtin max: a function to compile)
        "        s = _f(0.0)",
        "        for j in range(k):",
        "            s += math.exp(x[i, j] - m)",
        "        lse = m + math.log(s)",
        "        total += lse - x[i, t[i]]",
    ]
    if train:
        body += [
            "        inv = _f(1.0) / s",
            "        for j in range(k):",
            "            g[i, j] = math.exp(x[i, j] - m) * inv * scale",
            "        g[i, t[i]] -= scale",
        ]
    body += [f"    return total{' / n' if mean else ''}"]
    call = [site.val(logits), site.val(label)] + ([into] if train else [])
    return site.kernel(args, body, call, returns=True)


def squared_error_loss(site):
    n = site.group.anchor
    d = site.node(n)
    pred, target = d["inputs"]
    mean = d["attrs"]["reduction"] == "mean"
    factor = float(d["attrs"]["factor"])
    into = _gradient_target(site, pred)
    train = into is not None
    args = ["x", "t", "g"] if train else ["x", "t"]
    body = [
        "    n = x.shape[0]",
        "    xf = _flat(x)", "    tf = _flat(t)",
        "    total = 0.0",
        f"    c = _f({2 * factor * float(d['attrs']['weight'])!r}){' / n' if mean else ''}",
    ]
    if train:
        body.append("    gf = _flat(g)")
    body += ["    for i in range(xf.size):",
             "        e = xf[i] - tf[i]",
             f"        total += _f({factor!r}) * e * e"]
    if train:
        body.append("        gf[i] = c * e")
    body.append(f"    return total{' / n' if mean else ''}")
    call = [site.val(pred), site.val(target)] + ([into] if train else [])
    return site.kernel(args, body, call, returns=True)


# ----------------------------------------------------------------------------- backward

def dense_backward(site):
    """g = act'(gy); gW = xᵀ g; gb = Σ g; gx = g Wᵀ — the activation's backward is applied to
    the incoming gradient in place, so it costs no extra pass over memory."""
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    if len(site.shape(d["inputs"][0])) != 1:
        return None
    x = d["inputs"][0]
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
        call += [site.param(d["params"]["W"]), want_x]
        body.append("    gemm(1.0, gy, False, W, True, 0.0, gx)")
    if switch:
        args.append("relu")
        call.append(str(epi is not None))
    return site.kernel(args, body, call)


def elementwise_backward(site):
    b = site.group.nodes[0]
    n = site.node(b)["fwd"]
    d = site.node(n)
    gx = site.input_grad(n, 0)
    if d["op"].scalar is None or not gx:
        return None
    names = {"gy": "gyf[i]", "y": "yf[i]", "x": "xf[i]"}
    body = ["    gyf = _flat(gy)", "    yf = _flat(y)", "    xf = _flat(x)",
            "    gxf = _flat(gx)", "    for i in range(gyf.size):",
            f"        gxf[i] = {site.act_grad(n, names)}"]
    return site.kernel(["gy", "y", "x", "gx"], body,
                       [site.grad(n), site.val(n), site.val(d["inputs"][0]), gx])


def copy_backward(site):
    b = site.group.nodes[0]
    n = site.node(b)["fwd"]
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    gy = site.grad(n)
    if len(site.group.nodes) == 1 and site.alias(gy, gx):
        return "direct", [_view_note(gy, gx)], {}
    return site.kernel(_COPY_ARGS, _COPY, [gx, gy, "False"])


def add_backward(site):
    b = site.group.nodes[0]
    n = site.node(b)["fwd"]
    d = site.node(n)
    targets = [site.input_grad(n, j) for j in range(len(d["inputs"]))]
    targets = [t for t in targets if t]
    if not targets:
        return None
    args = ["g"] + [f"gx{j}" for j in range(len(targets))]
    body = ["    gf = _flat(g)"] + [f"    gx{j}f = _flat(gx{j})"
                                         for j in range(len(targets))]
    body += ["    for i in range(gf.size):"] + [f"        gx{j}f[i] = gf[i]"
                                                for j in range(len(targets))]
    return site.kernel(args, body, [site.grad(n)] + targets)


FORWARD = {"dense": dense_forward, "flatten": copy_forward, "reshape": copy_forward,
           "add": add_forward, **cpu_kernel_rules.FORWARD}
BACKWARD = {"dense": dense_backward, "flatten": copy_backward, "reshape": copy_backward,
            "add": add_backward, **cpu_kernel_rules.BACKWARD}
LOSSES = {"softmax_cross_entropy": softmax_xent_loss, "squared_error": squared_error_loss}


def rule_for(site):
    """The emitter for a group, or None to run the reference rule."""
    g = site.group
    op = site.node(g.anchor)["op"]
    if g.kind == "loss":
        return LOSSES.get(op.name)
    table = FORWARD if g.kind == "forward" else BACKWARD
    if op.name in table:
        return table[op.name]
    if op.fusion == Fusion.ELEMWISE and op.scalar:
        return elementwise_forward if g.kind == "forward" else elementwise_backward
    return None
