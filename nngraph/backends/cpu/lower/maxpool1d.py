"""maxpool1d: a 1-D pool is a 2-D pool over a height of 1. Windows without padding run an
unrolled generated kernel over the (N, C, L) arrays themselves (the value alone where
nothing goes backward); padded windows and the backward run the hand-written 2-D kernels of
kernels/cpu/pool.py on (N, C, 1, L) views of the same memory (`a[:, :, None]`: no copy,
still C-contiguous, so the kernels' signatures are maxpool2d's). The arg-max buffer is
(N, C, 1, Lo) either way, holding the index of each window's maximum along the length."""
from __future__ import annotations

from ....ops import _conv
from . import Call, Extern, lowers

UNROLL_MAX = 16
"""Windows up to this size are unrolled; wider ones run the hand-written loop."""


def geometry(site, n) -> tuple:
    """(kh, kw, sh, sw, pt, pb, pl, pr) of maxpool1d node n as a 2-D pool of height 1."""
    d = site.node(n)
    a = d.attrs
    _, length = site.shape(d.inputs[0])
    stride = a.stride or a.size
    _, pl, pr = _conv.out_size(length, a.size[0], stride[0], a.padding, 0, what="window")
    return (1, a.size[0], 1, stride[0], 0, 0, pl, pr)


def _lifted(name) -> str:
    return f"{name}[:, :, None]"


@lowers("maxpool1d", kind="forward", calls=("_pool.maxpool2d_forward",))
def maxpool1d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    geo = geometry(site, n)
    x, y = site.val(d.inputs[0]), site.val(n)
    c, lo = site.shape(n)
    train = site.gen.mode == "train"
    unrolled = not (geo[6] or geo[7]) and geo[1] <= UNROLL_MAX
    arg = site.scratch("arg", (c, 1, lo), kind="int") if train or not unrolled else None
    if not unrolled:
        return Extern([Call("_pool.maxpool2d_forward", [_lifted(x), _lifted(y), arg, *geo],
                            "(N, C, L) seen as (N, C, 1, L)")])
    name = f"k_{site.group.name}" + ("" if train else "_value")
    helper = _unrolled(site, n, name, geo[1], geo[3], train)
    return Extern([Call(name, [x, y] + ([arg] if train else []))], {name: helper})


def _unrolled(site, n, name, k, stride, with_arg):
    """Max pooling with the window unrolled: selects for the value, arithmetic for the
    arg-max, as maxpool2d's unrolled kernel (a compare-and-keep loop's branches mispredict).
    The reference's rules hold: the first maximum wins, the first NaN beats everything.
    Extents come from the arrays: one kernel serves every pool of this window and stride."""
    c, lo = site.shape(n)
    names = [f"a{u}" for u in range(k)]
    pad = " " * 16
    body = ["    for n in range(x.shape[0]):", "        for c in range(y.shape[1]):",
            "            for j in range(y.shape[2]):", f"                s = j * {stride}"]
    body += [f"{pad}{a} = x[n, c, s + {u}]" for u, a in enumerate(names)]
    body.append(f"{pad}best = {names[0]}")
    body += [f"{pad}best = {a} if {a} > best else best" for a in names[1:]]
    nan = " | ".join(f"({a} != {a})" for a in names)
    what = f"{n} (maxpool1d {k}, stride {stride}"
    if not with_arg:
        body += [f"{pad}if {nan}:", f"{pad}    best = {' + '.join(names)}   # NaN",
                 f"{pad}y[n, c, j] = best"]
        return site.njit(name, ["x", "y"], body, f"{what}, value only): N×{c}×{lo}")

    def at(u):
        return f"s + {u}" if u else "s"
    body.append(f"{pad}at = {at(k - 1)}")
    body += [f"{pad}at += ({at(u)} - at) * ({names[u]} == best)" for u in range(k - 2, -1, -1)]
    body.append(f"{pad}if {nan}:")
    for u in range(k - 1, -1, -1):
        body += [f"{pad}    if {names[u]} != {names[u]}:", f"{pad}        best, at = {names[u]}, {at(u)}"]
    body += [f"{pad}y[n, c, j] = best", f"{pad}arg[n, c, 0, j] = at"]
    return site.njit(name, ["x", "y", "arg"], body, f"{what}): N×{c}×{lo}")


@lowers("maxpool1d", kind="backward", calls=("_pool.maxpool2d_backward",))
def maxpool1d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    c, lo = site.shape(n)
    arg = site.scratch("arg", (c, 1, lo), kind="int")
    return Extern([Call("_pool.maxpool2d_backward", [_lifted(site.grad(n)), arg, _lifted(gx)],
                        "(N, C, L) seen as (N, C, 1, L)")])
