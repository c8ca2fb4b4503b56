"""The activation fused into a conv1d or conv2d_transpose layer, as lower/conv2d.py fuses
conv2d's: relu inside the hand-written kernels (forward on the way out, backward on the way
in), any other in a generated helper whose source is the one conv2d's rules generate, so the
codegen keeps one kernel for every conv layer with that activation."""
from __future__ import annotations

from . import Call
from .conv2d import _activation_epilogue, _kernel_relu

kernel_relu = _kernel_relu
"""Is the fused activation relu, which the conv kernels apply themselves?"""


def add_activation(site, ext, epi, out, pre) -> None:
    """Append to Extern `ext` the activation `epi` of the layer's output, in place in `out`
    or out = act(pre), unless the kernel applies it (relu) or there is none."""
    if epi and not kernel_relu(site, epi):
        name = f"k_{site.node(epi).op.name}_epilogue"
        ext.helpers[name] = _activation_epilogue(site, name, epi, pre)
        ext.calls.append(Call(name, [out] + ([pre] if pre else [])))


def add_activation_grad(site, ext, n, epi, gy) -> None:
    """Append to Extern `ext` the backward of activation `epi` (of layer n) over its output
    gradient `gy`, in place, unless the kernel takes gy through it (relu) or there is none."""
    if not epi or kernel_relu(site, epi):
        return
    what = site.node(epi).op.name
    name = f"k_d_{what}"
    names = {"gy": "gyf[i]", "y": "yf[i]", "x": "xf[i]"}
    body = ["    gyf = _flat(gy)", "    yf = _flat(y)", "    xf = _flat(x)",
            "    for i in range(gyf.size):", f"        gyf[i] = {site.act_grad(epi, names)}"]
    ext.helpers[name] = site.njit(name, ["gy", "y", "x"], body,
                                  f"backward of {what} over a conv output, in place in gy")
    x_for = site.val(n) if site.keeps_pre(epi) else site.val(epi)
    ext.calls.append(Call(name, [gy, site.val(epi), x_for]))
