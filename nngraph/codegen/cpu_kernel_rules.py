"""CPU rules for ops with hand-written kernels in kernels/cpu (convolution, pooling,
recurrent layers, batchnorm, embedding): the driver calls those kernels directly, and only
what is specific to one network (bias and activation epilogues, unrolled pooling windows)
is generated. See cpu_rules.py for the rule protocol.
"""
from __future__ import annotations


def _conv_geometry(site, n):
    """(sh, sw, pt, pb, pl, pr, dh, dw) of conv2d node n, as the reference computes them."""
    from ..ops import _conv
    d = site.node(n)
    a = d["attrs"]
    _, h, w = site.shape(d["inputs"][0])
    _, pt, pb = _conv.out_size(h, a.kernel[0], a.stride[0], a.padding, 0, dilation=a.dilation[0])
    _, pl, pr = _conv.out_size(w, a.kernel[1], a.stride[1], a.padding, 1, dilation=a.dilation[1])
    return (a.stride[0], a.stride[1], pt, pb, pl, pr, a.dilation[0], a.dilation[1])


def _activation_epilogue(site, name, epi, pre):
    """The activation of a conv's output (the kernel added the bias): in place in y, or, when
    the activation's backward needs its input, y = act(pre). Named by the activation: the
    codegen keeps one kernel for every conv whose activation code is the same."""
    source = "pref" if pre else "yf"
    body = ["    yf = _flat(y)"] + (["    pref = _flat(pre)"] if pre else []) + \
           ["    for i in range(yf.size):", f"        yf[i] = {site.act(epi, f'{source}[i]')}"]
    what = site.node(epi)["op"].name
    return site.njit(name, ["y"] + (["pre"] if pre else []), body,
                     f"{what} over a conv output" + (", from pre" if pre else ", in place"))


def _kernel_relu(site, epi) -> bool:
    """Is the fused activation relu, which conv2d_forward applies in its copy back and
    conv2d_backward takes the gradient through on its way in (no kernel of ours for either)?"""
    if not epi or site.keeps_pre(epi):
        return False
    op = site.node(epi)["op"]
    return op.name == "relu" and op.scalar == ("x if x > 0 else 0", "gy if y > 0 else 0")


def _wide(site, n) -> bool:
    """Does conv2d node n run conv2d_forward_wide, which unfolds the input in runs of whole
    padded rows? In evaluate and predict, for stride and dilation 1, where the input is
    padded (the runs of conv2d_forward's im2col are then short and clipped by the padding)
    and the padded width is at most 1.5 times the output's (the wide GEMM's extra work).
    Measured per layer (kernels/cpu/conv_wide.py conv2d_forward_wide): 5-30% faster for padded
    3x3 and 5x5 convs up to that ratio. Unpadded, the columns cost about as much both ways
    (a 1x1 conv's too) and the extra work decides: LeNet-5's second layer (5x5 on 12x12,
    1.5 times the work, pooled) at batch 128 took 871-1227 against 804-1065 us; its first
    (28/24) was within the noise."""
    sh, sw, pt, pb, pl, pr, dh, dw = _conv_geometry(site, n)
    _, _, w = site.shape(site.node(n)["inputs"][0])
    _, _, wo = site.shape(n)
    return site.gen.mode != "train" and (sh, sw, dh, dw) == (1, 1, 1, 1) and \
        pt + pb + pl + pr > 0 and 2 * (w + pl + pr) <= 3 * wo


def conv2d_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    c, h, w = site.shape(d["inputs"][0])
    f, ho, wo = site.shape(n)
    kh, kw = d["attrs"].kernel
    b = site.param(d["params"]["b"]) if "b" in d["params"] else "_none1"
    pre = site.val(n) if epi and site.keeps_pre(epi) else None
    pool = site.group.meta.get("pool")          # pooled in the copy back (pools_in_copy_back)
    out = site.val(pool or epi or n)
    sh, sw, pt, pb, pl, pr, dh, dw = geo = _conv_geometry(site, n)
    relu = _kernel_relu(site, epi)
    # with stride 1 and no dilation every input value reaches an output, so the kernel's
    # note of non-finite values can stand in for the scan of a network input
    if (sh, sw, dh, dw) == (1, 1, 1, 1):
        site.check_input(d["inputs"][0])
    x, weight = site.val(d["inputs"][0]), site.param(d["params"]["W"])
    if _wide(site, n):
        site.gen.wide.add(site.group.name)
        wp = w + pl + pr                            # per sample: the columns, the padded copy
        padded = (h + pt + pb) * wp * c + kw if pt + pb + pl + pr else 0
        cols = site.scratch("cols", (c * kh * kw * ho * wp + padded,))
        ybuf = site.scratch("ybuf", (f, ho * wp), layout="cols")
        call = (f"_convw.conv2d_forward_wide({x}, {weight}, {b}, {pre or out}, {cols}, {ybuf}, "
                f"{relu}, {2 if pool else 1}, {pt}, {pb}, {pl}, {pr})")
    else:
        cols = site.scratch("cols", (c * kh * kw, ho * wo), layout="cols")
        ybuf = site.scratch("ybuf", (f, ho * wo), layout="cols")
        keep = site.gen.mode == "train"                # the backward reads the columns
        call = (f"_conv.conv2d_forward({x}, {weight}, {b}, {pre or out}, {cols}, {ybuf}, "
                f"{keep}, {relu}, {2 if pool else 1}, {', '.join(map(str, geo))})")
    lines = [call + (f"   # and {pool} (maxpool2d 2x2)" if pool else "")]
    kernels = {}
    if epi and not relu:
        name = f"k_{site.node(epi)['op'].name}_epilogue"
        kernels[name] = _activation_epilogue(site, name, epi, pre)
        lines.append(f"{name}({', '.join([out] + ([pre] if pre else []))})")
    return "direct", lines, kernels


def pools_in_copy_back(site, pool_site) -> bool:
    """Can conv2d_forward (or conv2d_forward_wide) pool the output of conv group `site` in
    its copy back, for the maxpool2d group `pool_site` that reads it alone? For a conv2d
    with relu (the kernel's) or no activation, an even output height and width, and a 2x2
    pooling at stride 2 without padding. (Asked for evaluate and predict only.)"""
    n, epi = site.group.anchor, site.group.epilogue
    if site.node(n)["op"].name != "conv2d" or (epi and not _kernel_relu(site, epi)):
        return False
    p = pool_site.group.anchor
    if site.node(p)["op"].name != "maxpool2d" or site.node(p)["inputs"] != [epi or n]:
        return False
    _, ho, wo = site.shape(n)
    return ho % 2 == 0 and wo % 2 == 0 and _pool_geometry(pool_site, p) == (2, 2, 2, 2, 0, 0,
                                                                             0, 0)


def conv2d_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    c, h, w = site.shape(d["inputs"][0])
    f, ho, wo = site.shape(n)
    kh, kw = d["attrs"].kernel
    gy = site.grad(epi or n)
    lines, kernels = [], {}
    relu = _kernel_relu(site, epi)
    relu_out = site.val(epi) if relu else "_none4"
    if epi and not relu:
        what = site.node(epi)["op"].name
        name = f"k_d_{what}"
        names = {"gy": "gyf[i]", "y": "yf[i]", "x": "xf[i]"}
        body = ["    gyf = _flat(gy)", "    yf = _flat(y)", "    xf = _flat(x)",
                "    for i in range(gyf.size):",
                f"        gyf[i] = {site.act_grad(epi, names)}"]
        kernels[name] = site.njit(name, ["gy", "y", "x"], body,
                                  f"backward of {what} over a conv output, in place in gy")
        x_for = site.val(n) if site.keeps_pre(epi) else site.val(epi)
        lines.append(f"{name}({gy}, {site.val(epi)}, {x_for})")
    slots = site.param_slots(n)
    gw = site.pgrad(slots["W"]) if "W" in slots else "_none4"
    gb = site.pgrad(slots["b"]) if "b" in slots else "_none1"
    gx = site.input_grad(n, 0) or "_none4"
    cols = site.scratch("cols", (c * kh * kw, ho * wo), layout="cols")   # forward left them
    gybuf = site.scratch("gybuf", (f, ho * wo), layout="cols")
    # the weight gradient's transpose, where conv2d_backward takes that form (MKL runs it
    # faster for these filter and window sizes)
    from ..kernels.cpu.conv import GWT_FILTERS, GWT_ROWS
    gwt = site.scratch("gwt", (c * kh * kw * f,), layout="fixed") \
        if "W" in slots and f > GWT_FILTERS and c * kh * kw < GWT_ROWS else "_none1"
    geo = ", ".join(map(str, _conv_geometry(site, n)))
    lines.append(f"_conv.conv2d_backward(None, {gy}, {relu_out}, "
                 f"{site.param(d['params']['W'])}, {gw}, {gb}, {gx}, {cols}, {gybuf}, {gwt}, "
                 f"{geo})")
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
    geo = _pool_geometry(site, n)
    x, y = site.val(d["inputs"][0]), site.val(n)
    if any(geo[4:]):                              # padded windows: the general kernel
        arg = site.scratch("arg", site.shape(n), kind="int")
        return "direct", [f"_pool.maxpool2d_forward({x}, {y}, {arg}, "
                          f"{', '.join(map(str, geo))})"], {}
    if site.gen.mode != "train":                  # no backward: no arg-max to keep
        name = f"k_{site.group.name}_value"
        return "direct", [f"{name}({x}, {y})"], {name: _unrolled_maxpool(site, n, name, geo,
                                                                          False)}
    arg = site.scratch("arg", site.shape(n), kind="int")
    name = f"k_{site.group.name}"
    return "direct", [f"{name}({x}, {y}, {arg})"], {name: _unrolled_maxpool(site, n, name, geo,
                                                                           True)}


def _unrolled_maxpool(site, n, name, geo, with_arg):
    """Max pooling with the window unrolled: selects for the value and arithmetic ones for the
    arg-max. The data-dependent branches of a compare-and-keep loop mispredict half the time
    (14x slower on LeNet's first pool). The reference's rule holds: the first maximum wins,
    and a NaN beats everything (the first NaN, on a path that is rarely taken). Without
    with_arg (evaluate and predict) only the value is computed (LeNet-5's first pool at batch
    256: 0.97 ms with the int64 arg-max written, 0.38 ms without)."""
    kh, kw, sh, sw = geo[:4]
    c, ho, wo = site.shape(n)
    taps = [(u, v) for u in range(kh) for v in range(kw)]
    names = [f"a{k}" for k in range(len(taps))]
    # Extents are read from the arrays, not written in: one compiled kernel then serves
    # every pooling layer with this window and stride. Without the arg-max, no offsets.
    body = (["    width = x.shape[3]"] if with_arg else []) + [
        "    for n in range(x.shape[0]):", "        for c in range(y.shape[1]):",
        "            for i in range(y.shape[2]):", f"                r = i * {sh}",
        "                for j in range(y.shape[3]):", f"                    s = j * {sw}"]
    pad = " " * 20
    if with_arg:
        body.append(f"{pad}base = r * width + s")
    for name_k, (u, v) in zip(names, taps):
        body.append(f"{pad}{name_k} = x[n, c, r + {u}, s + {v}]")
    body.append(f"{pad}best = {names[0]}")
    for other in names[1:]:          # max() would compile a function of numba's: 0.02 s
        body.append(f"{pad}best = {other} if {other} > best else best")
    nan = " | ".join(f"({a} != {a})" for a in names)
    if not with_arg:
        body += [f"{pad}if {nan}:", f"{pad}    best = {' + '.join(names)}   # NaN",
                 f"{pad}y[n, c, i, j] = best"]
        return site.njit(name, ["x", "y"], body,
                         f"{n} (maxpool2d {kh}x{kw}, stride {sh}x{sw}, value only): "
                         f"N×{c}×{ho}×{wo}")

    def at(u, v):
        row = {0: "", 1: " + width"}.get(u, f" + {u} * width")
        return f"base{row}" + (f" + {v}" if v else "")
    last = taps[-1]
    body.append(f"{pad}at = {at(*last)}")
    for name_k, (u, v) in reversed(list(zip(names, taps))[:-1]):
        body.append(f"{pad}at += ({at(u, v)} - at) * ({name_k} == best)")
    body.append(f"{pad}if {nan}:")
    for name_k, (u, v) in reversed(list(zip(names, taps))):
        body.append(f"{pad}    if {name_k} != {name_k}:")
        body.append(f"{pad}        best, at = {name_k}, {at(u, v)}")
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




# ----------------------------------------------------------------- recurrent, norm, embedding

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _seq_out(site, n, name):
    """The kernels take y and gy as (N, T, H), or (N, 1, H) for the last state only."""
    return name if site.node(n)["attrs"].return_sequences else \
        f"{name}.reshape({name}.shape[0], 1, {name}.shape[1])"


def _rec_saved(site, n):
    d = site.node(n)
    steps, features = site.shape(d["inputs"][0])
    h = d["attrs"].units
    gh = _GATES[d["op"].name] * h
    saved = {"xt": site.scratch("xt", (steps, features), layout="time"),
             "hs": site.scratch("hs", (steps + 1, h), layout="time")}
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


_SAVED = {"rnn": ("xt", "hs"), "lstm": ("xt", "hs", "cs", "tcs", "gates"),
          "gru": ("xt", "hs", "gates", "un")}


def _saved_args(saved, kind):
    """What forward keeps for backward, in the kernels' argument order."""
    return [saved[k] for k in _SAVED[kind]]


def recurrent_forward(site):
    n = site.group.anchor
    d = site.node(n)
    kind = d["op"].name
    saved, steps, h, gh = _rec_saved(site, n)
    args = [site.val(d["inputs"][0]), _p(site, n, "W", ""), _p(site, n, "U", ""),
            _p(site, n, "b", "_none1")]
    if kind == "gru":
        args.append(_p(site, n, "bu", "_none1"))
    args.append(_seq_out(site, n, site.val(n)))
    if kind == "gru":
        args.append(site.scratch("xw", (steps, gh), layout="time"))
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
    args = [_p(site, n, "W", ""), _p(site, n, "U", "")] + _saved_args(saved, kind)
    args += [_seq_out(site, n, site.grad(n)), gx, grad.get("W", "_none2"),
             grad.get("U", "_none2"), grad.get("b", "_none1")]
    if kind == "gru":
        args.append(grad.get("bu", "_none1"))
    args.append(site.scratch("d", (steps, gh), layout="time"))
    if kind == "gru":
        args.append(site.scratch("dx", (steps, gh), layout="time"))
    args.append(site.scratch("gh", (h,)))
    if kind == "lstm":
        args.append(site.scratch("gc", (h,)))
    args.append(site.scratch("ut", (gh, h), layout="fixed"))
    args.append(site.scratch("gxt", (steps, site.shape(d["inputs"][0])[1]), layout="time")
                if gx != "_none3" else "_none3")
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


FORWARD = {"conv2d": conv2d_forward, "maxpool2d": maxpool2d_forward,
           "batchnorm": batchnorm_forward, "embedding": embedding_forward,
           **{kind: recurrent_forward for kind in _GATES}}
BACKWARD = {"conv2d": conv2d_backward, "maxpool2d": maxpool2d_backward,
            "batchnorm": batchnorm_backward, "embedding": embedding_backward,
            **{kind: recurrent_backward for kind in _GATES}}
