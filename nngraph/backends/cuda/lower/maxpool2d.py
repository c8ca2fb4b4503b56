"""maxpool2d without padding: one thread per output value finds its window's maximum (the
first maximum wins and a NaN beats everything, the first NaN, as the reference's rule
says) and, in training, where it is in the input plane; the backward zeroes the input's
gradient and adds each output's gradient at its arg-max with an atomic add (windows may
overlap). Padded windows run their numpy rule for now."""
from __future__ import annotations

from ...cpu.lower._common import pool_geometry
from . import Call, Extern, launcher, lowers

_SPLIT = ["    q = i", "    j = q % {a}.shape[3]", "    q //= {a}.shape[3]",
          "    r0 = q % {a}.shape[2]", "    q //= {a}.shape[2]",
          "    c = q % {a}.shape[1]", "    n = q // {a}.shape[1]"]


def _split(a: str) -> list:
    """Lines giving thread i's (n, c, r0, j) in 4-D array `a`."""
    return [line.format(a=a) for line in _SPLIT]


@lowers("maxpool2d", kind="forward")
def maxpool2d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    if d.op.name != "maxpool2d":
        return None
    kh, kw, sh, sw, *pads = pool_geometry(site, n)
    if any(pads):
        return None
    x, y = site.val(d.inputs[0]), site.val(n)
    arg = site.scratch("arg", site.shape(n), kind="int")
    body = _split("y") + [
        f"    r, s = r0 * {sh}, j * {sw}",
        "    best = x[n, c, r, s]", "    at = r * x.shape[3] + s",
        f"    for u in range({kh}):", f"        for v in range({kw}):",
        "            a = x[n, c, r + u, s + v]",
        "            if a > best or (a != a and best == best):",
        "                best = a", "                at = (r + u) * x.shape[3] + s + v",
        "    y[n, c, r0, j] = best", "    arg[n, c, r0, j] = at"]
    name = f"k_{site.group.name}"
    doc = f"{n} (maxpool2d {kh}x{kw}, stride {sh}x{sw}), with each value's arg-max"
    return Extern([Call(name, [x, y, arg])],
                  {name: launcher(name, ["x", "y", "arg"], body, "y.size", doc)})


@lowers("maxpool2d", kind="backward")
def maxpool2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx or any(pool_geometry(site, n)[4:]):
        return None
    arg = site.scratch("arg", site.shape(n), kind="int")
    zero, scatter = f"k_{site.group.name}_zero", f"k_{site.group.name}_scatter"
    scatter_body = _split("gy") + [
        "    at = arg[n, c, r0, j]",
        "    cuda.atomic.add(gx, (n, c, at // gx.shape[3], at % gx.shape[3]), gy[n, c, r0, j])"]
    return Extern(
        [Call(zero, [gx]), Call(scatter, [site.grad(n), arg, gx])],
        {zero: launcher(zero, ["gx"], _split("gx") + ["    gx[n, c, r0, j] = 0"], "gx.size",
                        "the input's gradient set to 0"),
         scatter: launcher(scatter, ["gy", "arg", "gx"], scatter_body, "gy.size",
                           "each output's gradient added at its arg-max")})
