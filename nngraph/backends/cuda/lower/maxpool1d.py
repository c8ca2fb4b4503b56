"""maxpool1d: maxpool2d's generated kernels over a height of 1, as the CPU backend lifts it
(backends/cpu/lower/maxpool1d.py, whose geometry this takes): its (N, C, L) buffers go in
as (N, C, 1, L) views (no copy) and the arg-max is (N, C, 1, Lo); window, stride and padding
go to the width. The lines are maxpool2d's (maxpool2d.py): one thread per output value, the
reference's rules for ties, NaN and padding cells; the backward zeroes the input's gradient
and adds each output's gradient at its arg-max with an atomic add (windows may overlap). A
pool of window k shares these kernels with a maxpool2d of window 1 x k."""
from __future__ import annotations

from ...cpu.lower.maxpool1d import geometry
from . import Call, Extern, launcher, lowers
from ._window import height1, split
from .maxpool2d import _window_max


def _arg(site, n) -> str:
    """The arg-max buffer (N, C, 1, Lo): each window's winner's place along the length."""
    c, lo = site.shape(n)
    return site.scratch("arg", (c, 1, lo), kind="int")


@lowers("maxpool1d", kind="forward")
def maxpool1d_forward(site):
    n = site.group.anchor
    d = site.node(n)
    kh, kw, sh, sw, pt, _, pl, _ = geometry(site, n)
    x = height1(site.val(d.inputs[0]), site.shape(d.inputs[0]))
    y = height1(site.val(n), site.shape(n))
    body = split("y") + _window_max(kh, kw, sh, sw, pt, pl) + [
        "    y[n, c, r0, j] = best", "    arg[n, c, r0, j] = at"]
    name = f"k_{site.group.name}"
    pads = f", padding {pl}" if pl else ""
    doc = f"{n} (maxpool1d {kw}, stride {sw}{pads}), with each value's arg-max"
    return Extern([Call(name, [x, y, _arg(site, n)], "(N, C, L) seen as (N, C, 1, L)")],
                  {name: launcher(name, ["x", "y", "arg"], body, "y.size", doc)})


@lowers("maxpool1d", kind="backward")
def maxpool1d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    gx = height1(gx, site.shape(site.node(n).inputs[0]))
    zero, scatter = f"k_{site.group.name}_zero", f"k_{site.group.name}_scatter"
    scatter_body = split("gy") + [
        "    at = arg[n, c, r0, j]", "    if at >= 0:",
        "        cuda.atomic.add(gx, (n, c, at // gx.shape[3], at % gx.shape[3]),"
        " gy[n, c, r0, j])"]
    return Extern(
        [Call(zero, [gx]),
         Call(scatter, [height1(site.grad(n), site.shape(n)), _arg(site, n), gx])],
        {zero: launcher(zero, ["gx"], split("gx") + ["    gx[n, c, r0, j] = 0"], "gx.size",
                        "the input's gradient set to 0"),
         scatter: launcher(scatter, ["gy", "arg", "gx"], scatter_body, "gy.size",
                           "each output's gradient added at its arg-max")})
