"""dense: y = act(x W + b) as one product (kernels/cuda/gemm.py) and one kernel for the bias
and the activation; its backward as the activation's gradient in place, two products and
the bias gradient's column sums (kernels/cuda/reduce.py)."""
from __future__ import annotations

from . import Call, Extern, launcher, lowers

_AT = "i // y.shape[1], i % y.shape[1]"          # a thread's row and column of y


def _rows(site, buffer: str, n) -> str:
    """`buffer` (of node n) as the product's (rows, features) matrix: itself for a vector
    per sample, else a reshaped view (arena buffers are C-contiguous: no copy), so a dense
    layer over the last axis of (steps, features) samples is one product."""
    shape = site.shape(n)
    return buffer if len(shape) == 1 else f"{buffer}.reshape(-1, {shape[-1]})"


@lowers("dense", kind="forward", calls=("_gemm.gemm",))
def dense_forward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    out = _rows(site, site.val(epi or n), n)
    calls = [Call("_gemm.gemm", ["1.0", _rows(site, site.val(d.inputs[0]), d.inputs[0]),
                                 "False", site.param(d.params["W"]), "False", "0.0", out])]
    if "b" not in d.params and not epi:
        return Extern(calls)
    pre = _rows(site, site.val(n), n) if epi and site.keeps_pre(epi) else None
    name = f"k_{site.group.name}_epilogue"
    args = ["y"] + (["b"] if "b" in d.params else []) + (["pre"] if pre else [])
    body = [f"    r, c = {_AT}", "    v = y[r, c]" + (" + b[c]" if "b" in d.params else "")]
    if pre:
        body.append("    pre[r, c] = v")
    body.append(f"    y[r, c] = {site.act(epi, 'v') if epi else 'v'}")
    calls.append(Call(name, [out] + ([site.param(d.params["b"])] if "b" in d.params else []) +
                      ([pre] if pre else [])))
    doc = f"{n}'s bias and activation" if epi else f"{n}'s bias"
    return Extern(calls, {name: launcher(name, args, body, "y.size", doc)})


@lowers("dense", kind="backward", calls=("_gemm.gemm", "_reduce.column_sums"))
def dense_backward(site):
    n, epi = site.group.anchor, site.group.epilogue
    d = site.node(n)
    gy, pslots, want_x = site.grad(epi or n), site.param_slots(n), site.input_grad(n, 0)
    gy = _rows(site, gy, n)
    calls, helpers = [], {}
    if epi:
        name = f"k_{site.group.name}_act_grad"
        names = {"gy": "gy[r, c]", "y": "y[r, c]", "x": "pre[r, c]"}
        args = ["gy", "y"] + (["pre"] if site.keeps_pre(epi) else [])
        body = [f"    r, c = {_AT.replace('y.', 'gy.')}",
                f"    gy[r, c] = {site.act_grad(epi, names)}"]
        calls.append(Call(name, [gy, _rows(site, site.val(epi), n)] +
                          ([_rows(site, site.val(n), n)] if site.keeps_pre(epi) else [])))
        helpers[name] = launcher(name, args, body, "gy.size", f"{epi}'s gradient, in place")
    x = _rows(site, site.val(d.inputs[0]), d.inputs[0])
    if "W" in pslots:
        calls.append(Call("_gemm.gemm", ["1.0", x, "True", gy, "False", "0.0",
                                         site.pgrad(pslots["W"])]))
    if "b" in pslots:
        calls.append(Call("_reduce.column_sums", [gy, site.pgrad(pslots["b"])]))
    if want_x:
        calls.append(Call("_gemm.gemm", ["1.0", gy, "False", site.param(d.params["W"]),
                                         "True", "0.0", _rows(site, want_x, d.inputs[0])]))
    return Extern(calls, helpers)
