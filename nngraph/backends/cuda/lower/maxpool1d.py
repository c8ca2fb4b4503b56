"""maxpool1d: maxpool2d's generated kernels over a height of 1, as the CPU backend lifts it
(backends/cpu/lower/maxpool1d.py, whose geometry this takes): its (N, C, L) buffers go in
as (N, C, 1, L) views (no copy) and the arg-max is (N, C, 1, Lo); window, stride and padding
go to the width. The lines are maxpool2d's (maxpool2d.py): one thread per output value, the
reference's rules for ties, NaN and padding cells; the backward zeroes the input's gradient
and adds each output's gradient at its arg-max with an atomic add (windows may overlap). A
pool of window k shares these kernels with a maxpool2d of window 1 x k."""
from __future__ import annotations

from ...cpu.lower.maxpool1d import geometry
from . import lowers
from ._window import height1
from .maxpool2d import scatter_max, window_max


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
    pads = f", padding {pl}" if pl else ""
    doc = f"{n} (maxpool1d {kw}, stride {sw}{pads}), with each value's arg-max"
    return window_max(site, x, y, _arg(site, n), (kh, kw, sh, sw, pt, pl), doc,
                      "(N, C, L) seen as (N, C, 1, L)")


@lowers("maxpool1d", kind="backward")
def maxpool1d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    return scatter_max(site, height1(site.grad(n), site.shape(n)), _arg(site, n),
                       height1(gx, site.shape(site.node(n).inputs[0])))
