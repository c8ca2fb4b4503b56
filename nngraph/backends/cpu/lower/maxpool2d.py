"""maxpool2d: unrolled generated kernels for windows without padding (value only where
nothing goes backward), the hand-written kernels of kernels/cpu/pool.py for padded ones."""
from __future__ import annotations

from . import Call, Extern, lowers
from ._common import pool_geometry


@lowers("maxpool2d", kind="forward", calls=("_pool.maxpool2d_forward",))
def maxpool2d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    if d.op.name != "maxpool2d":
        return None
    geo = pool_geometry(site, n)
    x, y = site.val(d.inputs[0]), site.val(n)
    if any(geo[4:]):                              # padded windows: the general kernel
        arg = site.scratch("arg", site.shape(n), kind="int")
        return Extern([Call("_pool.maxpool2d_forward", [x, y, arg, *geo])])
    if site.gen.mode != "train":                  # no backward: no arg-max to keep
        name = f"k_{site.group.name}_value"
        return Extern([Call(name, [x, y])], {name: _unrolled_maxpool(site, n, name, geo,
                                                                      False)})
    arg = site.scratch("arg", site.shape(n), kind="int")
    name = f"k_{site.group.name}"
    return Extern([Call(name, [x, y, arg])], {name: _unrolled_maxpool(site, n, name, geo,
                                                                       True)})


def _unrolled_maxpool(site, n, name, geo, with_arg):
    """Max pooling with the window unrolled: selects for the value and arithmetic ones for the
    arg-max. The data-dependent branches of a compare-and-keep loop mispredict half the time
    (14x slower on LeNet's first pool). The reference's rule holds: the first maximum wins,
    and a NaN beats everything (the first NaN, on a path that is rarely taken). Without
    with_arg (evaluate and predict) only the value is computed: writing the int64 arg-max
    more than doubles the time."""
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
    for other in names[1:]:          # not max(), which would compile a function of numba's
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


@lowers("maxpool2d", kind="backward", calls=("_pool.maxpool2d_backward",))
def maxpool2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    arg = site.scratch("arg", site.shape(n), kind="int")
    return Extern([Call("_pool.maxpool2d_backward", [site.grad(n), arg, gx])])
