"""CPU code for each kind of group: what an op becomes in generated source.

Each rule receives a `Site` (buffer names, shapes, attributes of the group it emits) and
returns the source of one njit kernel plus the line the driver uses to call it. An op with
no rule here runs its numpy reference rule from the driver instead (correct, slower), so a
new op works on the CPU backend the day it is registered and gets fast when it gets a rule.
"""
from __future__ import annotations

from ..ops.base import Fusion


def _loop_nest(shape_vars, body):
    """Nested loops over `shape_vars` (names of extents), indices i0, i1, ..."""
    lines, indent = [], "    "
    for k, extent in enumerate(shape_vars):
        lines.append(f"{indent}for i{k} in range({extent}):")
        indent += "    "
    return lines + [indent + line for line in body]


# ----------------------------------------------------------------------------- forward

def dense_forward(site):
    """y = act(x W + b): BLAS into y, then one loop for bias and activation."""
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    if len(site.shape(d["inputs"][0])) != 1:
        return None
    units = d["shape"][-1]
    has_b = "b" in d["params"]
    out = site.val(epi or n)
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    args = ["x", "W"] + (["b"] if has_b else []) + (["pre"] if pre else []) + ["y"]
    body = ["    np.dot(x, W, y)"]
    if has_b or epi:
        inner = ["v = y[i0, i1]" + (" + b[i1]" if has_b else "")]
        if pre:
            inner.append("pre[i0, i1] = v")
        inner.append(f"y[i0, i1] = {site.act(epi, 'v') if epi else 'v'}")
        body += _loop_nest(["y.shape[0]", str(units)], inner)
    call = [site.val(d["inputs"][0]), site.param(d["params"]["W"])] + \
        ([site.param(d["params"]["b"])] if has_b else []) + ([pre] if pre else []) + [out]
    return site.kernel(args, body, call)


def elementwise_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    if d["op"].scalar is None or len(d["inputs"]) != 1:
        return None
    body = ["xf = x.reshape(-1)", "yf = y.reshape(-1)",
            "for i in range(xf.size):",
            f"    yf[i] = {site.act(n, 'xf[i]')}"]
    return site.kernel(["x", "y"], ["    " + b for b in body],
                       [site.val(d["inputs"][0]), site.val(n)])


def copy_forward(site):
    """flatten / reshape: the same values in a new shape."""
    n = site.group.nodes[0]
    d = site.node(n)
    body = ["    yf = y.reshape(-1)", "    xf = x.reshape(-1)",
            "    for i in range(xf.size):", "        yf[i] = xf[i]"]
    return site.kernel(["x", "y"], body, [site.val(d["inputs"][0]), site.val(n)])


def add_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    k = len(d["inputs"])
    args = [f"x{j}" for j in range(k)] + ["y"]
    total = " + ".join(f"x{j}f[i]" for j in range(k))
    body = [f"    x{j}f = x{j}.reshape(-1)" for j in range(k)] + [
        "    yf = y.reshape(-1)", "    for i in range(yf.size):", f"        yf[i] = {total}"]
    return site.kernel(args, body, [site.val(i) for i in d["inputs"]] + [site.val(n)])


# ----------------------------------------------------------------------------- losses

def softmax_xent_loss(site):
    """Loss and (in training) d loss / d logits in one pass over the logits."""
    n = site.group.anchor
    d = site.node(n)
    logits, label = d["inputs"]
    if len(site.shape(logits)) != 1 or site.node(label)["dtype"] not in ("int64", "int32"):
        return None
    mean = d["attrs"]["reduction"] == "mean"
    train = len(site.group.nodes) > 1 and site.has_grad(logits)
    args = ["x", "t", "g"] if train else ["x", "t"]
    body = [
        "    n, k = x.shape",
        "    total = 0.0",
        # the gradient carries the loss's weight: d(w·loss)/dx
        f"    scale = _f({float(d['attrs']['weight'])!r}){' / n' if mean else ''}",
        "    for i in range(n):",
        "        m = x[i, 0]",
        "        for j in range(1, k):",
        "            m = max(m, x[i, j])",
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
    call = [site.val(logits), site.val(label)] + ([site.grad(logits)] if train else [])
    return site.kernel(args, body, call, returns=True)


def squared_error_loss(site):
    n = site.group.anchor
    d = site.node(n)
    pred, target = d["inputs"]
    mean = d["attrs"]["reduction"] == "mean"
    factor = float(d["attrs"]["factor"])
    train = len(site.group.nodes) > 1 and site.has_grad(pred)
    args = ["x", "t", "g"] if train else ["x", "t"]
    body = [
        "    n = x.shape[0]",
        "    xf = x.reshape(-1)", "    tf = t.reshape(-1)",
        "    total = 0.0",
        f"    c = _f({2 * factor * float(d['attrs']['weight'])!r}){' / n' if mean else ''}",
    ]
    if train:
        body.append("    gf = g.reshape(-1)")
    body += ["    for i in range(xf.size):",
             "        e = xf[i] - tf[i]",
             f"        total += _f({factor!r}) * e * e"]
    if train:
        body.append("        gf[i] = c * e")
    body.append(f"    return total{' / n' if mean else ''}")
    call = [site.val(pred), site.val(target)] + ([site.grad(pred)] if train else [])
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
    units = d["shape"][-1]
    gy = site.grad(epi or n)
    pslots = site.param_slots(n)
    want_x = site.input_grad(n, 0)
    args, call, body = ["gy"], [gy], []
    if epi:
        names = {"gy": "gy[i0, i1]", "y": "y[i0, i1]", "x": "pre[i0, i1]"}
        args.append("y")
        call.append(site.val(epi))
        if site.keeps_pre(epi):
            args.append("pre")
            call.append(site.val(n))
        body += _loop_nest(["gy.shape[0]", str(units)],
                           [f"gy[i0, i1] = {site.act_grad(epi, names)}"])
    args += ["x"]
    call += [site.val(x)]
    if "W" in pslots:
        args.append("gW")
        call.append(site.pgrad(pslots["W"]))
        body.append("    np.dot(x.T, gy, gW)")
    if "b" in pslots:
        args.append("gb")
        call.append(site.pgrad(pslots["b"]))
        body += ["    for j in range(gb.shape[0]):", "        gb[j] = 0",
                 "    for i in range(gy.shape[0]):", f"        for j in range({units}):",
                 "            gb[j] += gy[i, j]"]
    if want_x:
        args += ["W", "gx"]
        call += [site.param(d["params"]["W"]), want_x]
        body.append("    np.dot(gy, W.T, gx)")
    return site.kernel(args, body, call)


def elementwise_backward(site):
    b = site.group.nodes[0]
    n = site.node(b)["fwd"]
    d = site.node(n)
    gx = site.input_grad(n, 0)
    if d["op"].scalar is None or not gx:
        return None
    names = {"gy": "gyf[i]", "y": "yf[i]", "x": "xf[i]"}
    body = ["    gyf = gy.reshape(-1)", "    yf = y.reshape(-1)", "    xf = x.reshape(-1)",
            "    gxf = gx.reshape(-1)", "    for i in range(gyf.size):",
            f"        gxf[i] = {site.act_grad(n, names)}"]
    return site.kernel(["gy", "y", "x", "gx"], body,
                       [site.grad(n), site.val(n), site.val(d["inputs"][0]), gx])


def copy_backward(site):
    b = site.group.nodes[0]
    n = site.node(b)["fwd"]
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    body = ["    gf = g.reshape(-1)", "    gxf = gx.reshape(-1)",
            "    for i in range(gf.size):", "        gxf[i] = gf[i]"]
    return site.kernel(["g", "gx"], body, [site.grad(n), gx])


def add_backward(site):
    b = site.group.nodes[0]
    n = site.node(b)["fwd"]
    d = site.node(n)
    targets = [site.input_grad(n, j) for j in range(len(d["inputs"]))]
    targets = [t for t in targets if t]
    if not targets:
        return None
    args = ["g"] + [f"gx{j}" for j in range(len(targets))]
    body = ["    gf = g.reshape(-1)"] + [f"    gx{j}f = gx{j}.reshape(-1)"
                                         for j in range(len(targets))]
    body += ["    for i in range(gf.size):"] + [f"        gx{j}f[i] = gf[i]"
                                                for j in range(len(targets))]
    return site.kernel(args, body, [site.grad(n)] + targets)


FORWARD = {"dense": dense_forward, "flatten": copy_forward, "reshape": copy_forward,
           "add": add_forward}
BACKWARD = {"dense": dense_backward, "flatten": copy_backward, "reshape": copy_backward,
            "add": add_backward}
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


# ------------------------------------------------------- hand-written kernels (kernels/cpu)

def _conv_geometry(site, n):
    """(sh, sw, pt, pb, pl, pr, dh, dw) of conv2d node n, as the reference computes them."""
    from ..ops import _conv
    d = site.node(n)
    a = d["attrs"]
    _, h, w = site.shape(d["inputs"][0])
    _, pt, pb = _conv.out_size(h, a.kernel[0], a.stride[0], a.padding, 0, dilation=a.dilation[0])
    _, pl, pr = _conv.out_size(w, a.kernel[1], a.stride[1], a.padding, 1, dilation=a.dilation[1])
    return (a.stride[0], a.stride[1], pt, pb, pl, pr, a.dilation[0], a.dilation[1])


def _channel_epilogue(site, name, n, epi, has_b, pre):
    """Bias per channel and the activation, in place over (N, C, H, W)."""
    c, h, w = site.shape(n)
    args = ["y"] + (["b"] if has_b else []) + (["pre"] if pre else [])
    inner = ["v = y[i0, i1, i2, i3]" + (" + b[i1]" if has_b else "")]
    if pre:
        inner.append("pre[i0, i1, i2, i3] = v")
    inner.append(f"y[i0, i1, i2, i3] = {site.act(epi, 'v') if epi else 'v'}")
    body = _loop_nest(["y.shape[0]", str(c), str(h), str(w)], inner)
    return site.njit(name, args, body, f"bias and activation of {n}")


def conv2d_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    c, h, w = site.shape(d["inputs"][0])
    f, ho, wo = site.shape(n)
    kh, kw = d["attrs"].kernel
    has_b = "b" in d["params"]
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    out = site.val(epi or n)
    cols = site.scratch("cols", (c * kh * kw, ho * wo), layout="cols")
    ybuf = site.scratch("ybuf", (f, ho * wo), layout="cols")
    geo = ", ".join(map(str, _conv_geometry(site, n)))
    target = pre or out
    lines = [f"_conv.conv2d_forward({site.val(d['inputs'][0])}, "
             f"{site.param(d['params']['W'])}, {target}, {cols}, {ybuf}, {geo})"]
    kernels = {}
    if has_b or epi:
        name = f"k_{site.group.name}_epilogue"
        kernels[name] = _channel_epilogue(site, name, n, epi, has_b, pre)
        if pre:                                   # conv wrote the pre-activation
            args = [out] + ([site.param(d["params"]["b"])] if has_b else []) + [pre]
            kernels[name] = kernels[name].replace("v = y[i0, i1, i2, i3]",
                                                  "v = pre[i0, i1, i2, i3]")
        else:
            args = [out] + ([site.param(d["params"]["b"])] if has_b else [])
        lines.append(f"{name}({', '.join(args)})")
    return "direct", lines, kernels


def conv2d_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    c, h, w = site.shape(d["inputs"][0])
    f, ho, wo = site.shape(n)
    kh, kw = d["attrs"].kernel
    gy = site.grad(epi or n)
    lines, kernels = [], {}
    if epi:
        name = f"k_{site.group.name}_act"
        names = {"gy": "gyf[i]", "y": "yf[i]", "x": "xf[i]"}
        body = ["    gyf = gy.reshape(-1)", "    yf = y.reshape(-1)", "    xf = x.reshape(-1)",
                "    for i in range(gyf.size):",
                f"        gyf[i] = {site.act_grad(epi, names)}"]
        kernels[name] = site.njit(name, ["gy", "y", "x"], body, f"backward of {epi}")
        x_for = site.val(n) if site.keeps_pre(epi) else site.val(epi)
        lines.append(f"{name}({gy}, {site.val(epi)}, {x_for})")
    slots = site.param_slots(n)
    gw = site.pgrad(slots["W"]) if "W" in slots else "_none4"
    gb = site.pgrad(slots["b"]) if "b" in slots else "_none1"
    gx = site.input_grad(n, 0) or "_none4"
    cols = site.scratch("cols", (c * kh * kw, ho * wo), layout="cols")
    gybuf = site.scratch("gybuf", (f, ho * wo), layout="cols")
    gcols = site.scratch("gcols", (c * kh * kw, ho * wo), layout="cols")
    geo = ", ".join(map(str, _conv_geometry(site, n)))
    lines.append(f"_conv.conv2d_backward({gy}, {site.param(d['params']['W'])}, {cols}, {gw}, "
                 f"{gb}, {gx}, {gybuf}, {gcols}, {geo})")
    return "direct", lines, kernels


def _pool_geometry(site, n):
    from ..ops import _conv
    d = site.node(n)
    a = d["attrs"]
    _, h, w = site.shape(d["inputs"][0])
    stride = a.stride or a.size
    _, pt, pb = _conv.out_size(h, a.size[0], stride[0], a.padding, 0, what="window")
    _, pl, pr = _conv.out_size(w, a.size[1], stride[1], a.padding, 1, what="window")
    return (a.size[0], a.size[1], stride[0], stride[1], pt, pb, pl, pr)


def maxpool2d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    if d["op"].name != "maxpool2d":
        return None
    arg = site.scratch("arg", site.shape(n), kind="int")
    geo = _pool_geometry(site, n)
    x, y = site.val(d["inputs"][0]), site.val(n)
    if any(geo[4:]):                              # padded windows: the general kernel
        return "direct", [f"_pool.maxpool2d_forward({x}, {y}, {arg}, "
                          f"{', '.join(map(str, geo))})"], {}
    name = f"k_{site.group.name}"
    return "direct", [f"{name}({x}, {y}, {arg})"], {name: _unrolled_maxpool(site, n, name, geo)}


def _unrolled_maxpool(site, n, name, geo):
    """Max pooling with the window unrolled: max() for the value, arithmetic selects for the
    arg-max. The data-dependent branches of a compare-and-keep loop mispredict half the time
    (14x slower on LeNet's first pool). The reference's rule holds: the first maximum wins,
    and a NaN beats everything (the first NaN, on a path that is rarely taken)."""
    kh, kw, sh, sw = geo[:4]
    c, ho, wo = site.shape(n)
    width = site.shape(site.node(n)["inputs"][0])[2]
    taps = [(u, v) for u in range(kh) for v in range(kw)]
    names = [f"a{k}" for k in range(len(taps))]
    body = [f"    for n in range(x.shape[0]):", f"        for c in range({c}):",
            f"            for i in range({ho}):", f"                r = i * {sh}",
            f"                for j in range({wo}):", f"                    s = j * {sw}",
            f"                    base = r * {width} + s"]
    pad = " " * 20
    for name_k, (u, v) in zip(names, taps):
        body.append(f"{pad}{name_k} = x[n, c, r + {u}, s + {v}]")
    best = names[0]
    for other in names[1:]:
        best = f"max({best}, {other})"
    body.append(f"{pad}best = {best}")
    last = taps[-1]
    body.append(f"{pad}at = base + {last[0] * width + last[1]}")
    for name_k, (u, v) in reversed(list(zip(names, taps))[:-1]):
        body.append(f"{pad}at += (base + {u * width + v} - at) * ({name_k} == best)")
    nan = " | ".join(f"({a} != {a})" for a in names)
    body.append(f"{pad}if {nan}:")
    for name_k, (u, v) in reversed(list(zip(names, taps))):
        body.append(f"{pad}    if {name_k} != {name_k}:")
        body.append(f"{pad}        best, at = {name_k}, base + {u * width + v}")
    body += [f"{pad}y[n, c, i, j] = best", f"{pad}arg[n, c, i, j] = at"]
    return site.njit(name, ["x", "y", "arg"], body,
                     f"{n} (maxpool2d {kh}x{kw}, stride {sh}x{sw}): N×{c}×{ho}×{wo}")


def maxpool2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    arg = site.scratch("arg", site.shape(n), kind="int")
    return "direct", [f"_pool.maxpool2d_backward({site.grad(n)}, {arg}, {gx})"], {}


FORWARD.update(conv2d=conv2d_forward, maxpool2d=maxpool2d_forward)
BACKWARD.update(conv2d=conv2d_backward, maxpool2d=maxpool2d_backward)


# ----------------------------------------------------------------- recurrent, norm, embedding

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _seq_out(site, n, name):
    """The kernels take y and gy as (N, T, H), or (N, 1, H) for the last state only."""
    return name if site.node(n)["attrs"].return_sequences else \
        f"{name}.reshape({name}.shape[0], 1, {name}.shape[1])"


def _rec_saved(site, n):
    d = site.node(n)
    steps, _ = site.shape(d["inputs"][0])
    h = d["attrs"].units
    gh = _GATES[d["op"].name] * h
    saved = {"hs": site.scratch("hs", (steps + 1, h), layout="time")}
    if d["op"].name == "lstm":
        saved["cs"] = site.scratch("cs", (steps + 1, h), layout="time")
        saved["tcs"] = site.scratch("tcs", (steps, h), layout="time")
    if d["op"].name in ("lstm", "gru"):
        saved["gates"] = site.scratch("gates", (steps, gh), layout="time")
    if d["op"].name == "gru":
        saved["un"] = site.scratch("un", (steps, h), layout="time")
    return saved, steps, h, gh


def _p(site, n, name, none):
    key = site.node(n)["params"].get(name)
    return site.param(key) if key else none


_SAVED = {"rnn": (), "lstm": ("cs", "tcs", "gates"), "gru": ("gates", "un")}


def _saved_args(saved, kind):
    """What forward keeps for backward, in the kernels' argument order."""
    return [saved[k] for k in _SAVED[kind]]


def recurrent_forward(site):
    n = site.group.anchor
    d = site.node(n)
    kind = d["op"].name
    saved, steps, h, gh = _rec_saved(site, n)
    xw = site.scratch("xw", (steps, gh), layout="rows")
    args = [site.val(d["inputs"][0]), _p(site, n, "W", ""), _p(site, n, "U", ""),
            _p(site, n, "b", "_none1")]
    if kind == "gru":
        args.append(_p(site, n, "bu", "_none1"))
    args += [_seq_out(site, n, site.val(n)), xw, saved["hs"]]
    args += _saved_args(saved, kind)
    return "direct", [f"_rec.{kind}_forward({', '.join(args)})"], {}


def recurrent_backward(site):
    n = site.group.anchor
    d = site.node(n)
    kind = d["op"].name
    saved, steps, h, gh = _rec_saved(site, n)
    slots = site.param_slots(n)
    grad = {p: site.pgrad(k) for p, k in slots.items()}
    gx = site.input_grad(n, 0) or "_none3"
    args = [site.val(d["inputs"][0]), _p(site, n, "W", ""), _p(site, n, "U", ""), saved["hs"]]
    args += _saved_args(saved, kind)
    args += [_seq_out(site, n, site.grad(n)), gx, grad.get("W", "_none2"),
             grad.get("U", "_none2"), grad.get("b", "_none1")]
    if kind == "gru":
        args.append(grad.get("bu", "_none1"))
    args += [site.scratch("d_tm", (steps, gh), layout="time"),
             site.scratch("d_bm", (steps, gh), layout="rows"), site.scratch("gh", (h,))]
    if kind == "lstm":
        args.append(site.scratch("gc", (h,)))
    if kind == "gru":
        args.append(site.scratch("gtmp", (h,)))
    if "W" not in grad or "U" not in grad:
        return None                      # a partly frozen recurrent layer: reference rule
    return "direct", [f"_rec.{kind}_backward({', '.join(args)})"], {}


def _ncs(name, channels):
    return f"{name}.reshape({name}.shape[0], {channels}, -1)"


def batchnorm_forward(site):
    n = site.group.anchor
    d = site.node(n)
    c = site.shape(n)[0]
    x, y = _ncs(site.val(d["inputs"][0]), c), _ncs(site.val(n), c)
    gamma, beta = _p(site, n, "gamma", "_none1"), _p(site, n, "beta", "_none1")
    rm, rv = site.state(n, "running_mean"), site.state(n, "running_var")
    x_hat = _ncs(site.scratch("x_hat", site.shape(n)), c)
    inv = site.scratch("inv_std", (c,), layout="fixed")
    a = d["attrs"]
    if site.gen.mode == "train":
        line = (f"_norm.batchnorm_forward_train({x}, {gamma}, {beta}, {y}, {x_hat}, {inv}, "
                f"{rm}, {rv}, {a.momentum!r}, {a.eps!r})")
    else:
        line = (f"_norm.batchnorm_forward_eval({x}, {gamma}, {beta}, {y}, {x_hat}, {inv}, "
                f"{rm}, {rv}, {a.eps!r})")
    return "direct", [line], {}


def batchnorm_backward(site):
    n = site.group.anchor
    c = site.shape(n)[0]
    slots = site.param_slots(n)
    if "gamma" not in slots:
        return None
    gx = site.input_grad(n, 0)
    gx = _ncs(gx, c) if gx else "_none3"
    x_hat = _ncs(site.scratch("x_hat", site.shape(n)), c)
    inv = site.scratch("inv_std", (c,), layout="fixed")
    gbeta = site.pgrad(slots["beta"]) if "beta" in slots else "_none1"
    return "direct", [f"_norm.batchnorm_backward({_ncs(site.grad(n), c)}, {x_hat}, "
                      f"{site.param(site.node(n)['params']['gamma'])}, {inv}, {gx}, "
                      f"{site.pgrad(slots['gamma'])}, {gbeta}, True)"], {}


def embedding_forward(site):
    n = site.group.anchor
    d = site.node(n)
    idx, y = site.val(d["inputs"][0]), site.val(n)
    dim = d["attrs"].dim
    return "direct", [f"_emb.embedding_forward({idx}.reshape(-1), "
                      f"{site.param(d['params']['W'])}, {y}.reshape(-1, {dim}))"], {}


def embedding_backward(site):
    n = site.group.anchor
    d = site.node(n)
    slots = site.param_slots(n)
    if "W" not in slots:
        return None
    dim = d["attrs"].dim
    return "direct", [f"_emb.embedding_backward({site.val(d['inputs'][0])}.reshape(-1), "
                      f"{site.grad(n)}.reshape(-1, {dim}), {site.pgrad(slots['W'])})"], {}


for _kind in _GATES:
    FORWARD[_kind], BACKWARD[_kind] = recurrent_forward, recurrent_backward
FORWARD.update(batchnorm=batchnorm_forward, embedding=embedding_forward)
BACKWARD.update(batchnorm=batchnorm_backward, embedding=embedding_backward)
