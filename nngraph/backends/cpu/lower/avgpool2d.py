"""avgpool2d on the hand-written kernels of kernels/cpu/pool.py: padding counts as zeros and
every window divides by kh*kw, as the reference's rule does (count_include_pad). The
geometry is passed, not generated, so one compiled kernel serves every average pooling."""
from __future__ import annotations

from . import Call, Extern, lowers
from ._common import pool_geometry


def excludes_pad(site, n) -> bool:
    """count_include_pad false: the kernels divide by the window's area, so such a pool
    declines (None) and its group runs the numpy rule."""
    return not site.node(n).attrs.get("count_include_pad", True)


def _note(geo) -> str:
    kh, kw, sh, sw, pt, pb, pl, pr = geo
    return f"{kh}x{kw} window, stride {sh}x{sw}, padding {pt},{pb},{pl},{pr} (t,b,l,r)"


@lowers("avgpool2d", kind="forward", calls=("_pool.avgpool2d_forward",))
def avgpool2d_forward(site):
    n = site.group.anchor
    if excludes_pad(site, n):
        return None
    geo = pool_geometry(site, n)
    return Extern([Call("_pool.avgpool2d_forward",
                        [site.val(site.node(n).inputs[0]), site.val(n), *geo], _note(geo))])


@lowers("avgpool2d", kind="backward", calls=("_pool.avgpool2d_backward",))
def avgpool2d_backward(site):
    n = site.group.anchor
    gx = site.input_grad(n, 0)
    if not gx or excludes_pad(site, n):
        return None
    geo = pool_geometry(site, n)
    return Extern([Call("_pool.avgpool2d_backward", [site.grad(n), gx, *geo], _note(geo))])
