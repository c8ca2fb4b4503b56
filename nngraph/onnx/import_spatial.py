"""ONNX Pad, the channel shuffle pattern and pools with asymmetric pads -> nngraph's pad2d,
channel_shuffle and pools, the inverse of their export in layers.py.

Pad: constant pads on the two spatial axes of an (N, C, H, W) tensor, modes constant,
reflect and edge, are one pad2d layer; pads of the batch or channel axes, or of other ranks,
have no nngraph form and are refused.

Channel shuffle (ShuffleNet): Reshape (N, C, ...) -> (N, g, C/g, ...), Transpose perm
[0, 2, 1, ...], Reshape back. nngraph has no transpose layer, so the first Reshape adds no
layer when a Transpose alone reads it: its value is the input itself with the split ONNX
shape pending (Value.onnx_shape; any other reader would get a reshape layer as usual).
The Transpose of such a value is a channel_shuffle, whose output, (C, ...) in nngraph, is
(C/g, g, ...) in ONNX: the same values in the same order, so the Reshape back adds nothing.

Pools with asymmetric explicit pads (import_ops.py hands them here): nngraph's pools pad
both sides of an axis alike, so the padding becomes a pad2d layer ahead of an unpadded pool
where the padding cells are ordinary values: -inf ahead of a max pool (they never win), zeros
ahead of an average that counts them (count_include_pad=1). An average that excludes them
(count_include_pad=0, GoogLeNet's last pool) cannot take them from a pad2d, whose cells the
pool would count; it is the average with the larger pad on both sides of each axis,
counting only input cells (avgpool2d's count_include_pad: false), cropped by a pad2d with
negative pads to the windows the asymmetric pads have: each kept window covers the same
input cells either way, so it has the same sum and the same divisor.
"""
from __future__ import annotations

import math

from .import_core import Importer, Value, imports

MODES = ("constant", "reflect", "edge")


def _str(v):
    return v.decode() if isinstance(v, bytes) else v


def _pads_and_value(imp: Importer, node, a: dict):
    """(pads, constant) of Pad: attributes before opset 11, inputs from 11 (with axes from
    18)."""
    if imp.opset < 11:
        return list(a.get("pads", [])), float(a.get("value", 0.0))
    pads = imp.const(node.input[1]) if len(node.input) > 1 else None
    if pads is None:
        imp.refuse("its pads are computed at run time, not folded to a constant")
    value = 0.0
    if len(node.input) > 2 and node.input[2]:
        c = imp.const(node.input[2])
        if c is None or c.size != 1:
            imp.refuse("its constant_value is computed from data or not one number")
        value = float(c.reshape(-1)[0])
    pads = [int(p) for p in pads]
    if len(node.input) > 3 and node.input[3]:
        axes = imp.const(node.input[3])
        if axes is None:
            imp.refuse("its axes are computed at run time")
        full = [0] * 8
        for k, axis in enumerate(int(x) % 4 for x in axes):
            full[axis], full[axis + 4] = pads[k], pads[k + len(axes)]
        pads = full
    return pads, value


@imports("Pad")
def pad(imp: Importer, node):
    a = imp.attrs()
    mode = _str(a.get("mode", "constant"))
    if mode not in MODES:
        imp.refuse(f"mode {mode}: nngraph's pad2d pads with a constant, a reflection or "
                   "the edge")
    shape = imp.shape(node.input[0])
    if len(shape) != 3:
        imp.refuse(f"a pad of a {len(shape) + 1}-D tensor: nngraph's pad2d pads the height "
                   "and width of (N, C, H, W)")
    pads, value = _pads_and_value(imp, node, a)
    if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5]:
        imp.refuse(f"pads {pads} pad the batch or channel axis: nngraph's pad2d pads the "
                   "height and width only")
    padding = [pads[2], pads[6], pads[3], pads[7]]
    if not any(padding):
        return imp.set(node.output[0], imp.data(node.input[0]))
    if mode != "constant" and min(padding) < 0:
        imp.refuse(f"negative pads in mode {mode}: nngraph's pad2d crops in mode constant")
    out = imp.shape(node.output[0])
    name = imp.add_layer("pad2d", [imp.layer_input(node.input[0])], out, padding=padding,
                         mode=mode, value=value if mode == "constant" else None)
    imp.set(node.output[0], Value(name, out))


def split_channels(imp: Importer, node, v: Value, target: tuple) -> bool:
    """The first Reshape of a channel shuffle: (C, ...) -> (g, C/g, ...) read by one
    Transpose only. Its value is `v` with the split shape pending; True when so."""
    out = node.output[0]
    if v.view or v.onnx_shape is not None or len(target) != len(v.shape) + 1 or \
            target[0] * target[1] != v.shape[0] or tuple(target[2:]) != tuple(v.shape[1:]) \
            or imp.readers.get(out) != ["Transpose"] or imp.uses.get(out) != 1:
        return False
    imp.set(out, Value(v.name, v.shape, onnx_shape=tuple(target)))
    return True


def shuffle(imp: Importer, node, v: Value, perm: list) -> bool:
    """The Transpose of a channel shuffle (see split_channels): a channel_shuffle layer;
    False for any other transpose."""
    split = v.onnx_shape
    if split is None or v.view or len(split) != len(v.shape) + 1 or \
            perm != [0, 2, 1] + list(range(3, len(split) + 1)) or \
            split[0] * split[1] != v.shape[0]:
        return False
    name = imp.add_layer("channel_shuffle", [v.name], v.shape, groups=int(split[0]))
    imp.set(node.output[0], Value(name, v.shape, onnx_shape=(split[1], split[0]) + split[2:]))
    return True


def pad_layer(imp: Importer, x: str, shape: tuple, padding, value: float, suffix: str):
    """A pad2d of layer `x` (per-sample `shape`); returns (its name, its shape)."""
    t, b, l, r = padding
    out = (shape[0], shape[1] + t + b, shape[2] + l + r)
    return imp.add_layer("pad2d", [x], out, suffix=suffix, padding=list(padding),
                         value=value), out


def padded_pool(imp: Importer, node, op: str, kernel, strides, pads, include=True):
    """A 2-D pool with asymmetric pads (lo, hi): pad2d then the pool unpadded, or, for an
    average that excludes the padding, the symmetric pool cropped (module docstring)."""
    (top, left), (bottom, right) = pads
    shape = imp.shape(node.input[0])
    x = imp.layer_input(node.input[0])
    out = imp.shape(node.output[0])
    if op == "maxpool2d" or include:
        value = -math.inf if op == "maxpool2d" else 0.0
        x, shape = pad_layer(imp, x, shape, (top, bottom, left, right), value, "pad")
        name = imp.add_layer(op, [x], out, size=list(kernel), stride=list(strides),
                             padding="valid")
        return imp.set(node.output[0], Value(name, out))
    both = [max(top, bottom), max(left, right)]
    crop = []
    for size, k, s, p, lo, hi in zip(shape[1:], kernel, strides, both, pads[0], pads[1]):
        if (p - lo) % s:
            imp.refuse(f"pads {list(pads[0]) + list(pads[1])} with count_include_pad=0 where "
                       "the stride does not divide their difference")
        wide = (size + 2 * p - k) // s + 1
        narrow = (size + lo + hi - k) // s + 1
        crop.append(((p - lo) // s, wide - narrow - (p - lo) // s))
    wide = (shape[0],) + tuple(o + a + b for o, (a, b) in zip(out[1:], crop))
    pooled = imp.add_layer("avgpool2d", [x], wide, suffix="pool", size=list(kernel),
                           stride=list(strides), padding=both, count_include_pad=False)
    (ct, cb), (cl, cr) = crop
    name = imp.add_layer("pad2d", [pooled], out, padding=[-ct, -cb, -cl, -cr]) \
        if ct + cb + cl + cr else pooled
    imp.set(node.output[0], Value(name, out))
