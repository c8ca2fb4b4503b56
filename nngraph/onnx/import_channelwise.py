"""ONNX LRN and PRelu -> nngraph's lrn and prelu layers, the inverse of their export in
layers.py. Both work per channel, the first axis after the batch, as nngraph's ops do: LRN
over a window of channels, PRelu with one slope per channel (a scalar slope is that slope for
every channel; one that differs within a channel has no nngraph form and is refused). Before
opset 7 a PRelu slope of C values was per channel (axis 1) whatever the rank; from opset 7 it
broadcasts as numpy does, from the last axis.
"""
from __future__ import annotations

import numpy as np

from .import_core import Importer, Value, imports


@imports("LRN")
def lrn(imp: Importer, node):
    a = imp.attrs()
    if "size" not in a:
        imp.refuse("LRN without its size attribute")
    size = int(a["size"])
    if size < 1 or size % 2 == 0:
        imp.refuse(f"size={size}: nngraph's lrn centres an odd window on each channel")
    bias = float(a.get("bias", 1.0))
    if bias <= 0:
        imp.refuse(f"bias={bias}: nngraph's lrn needs a positive bias (k)")
    shape = imp.shape(node.input[0])
    x = imp.layer_input(node.input[0])
    name = imp.add_layer("lrn", [x], shape, size=size, alpha=float(a.get("alpha", 1e-4)),
                         beta=float(a.get("beta", 0.75)), bias=bias)
    imp.set(node.output[0], Value(name, shape))


def _slope_per_channel(imp: Importer, slope, shape) -> np.ndarray:
    """The (C,) slope that `slope` is when broadcast over a (batch, *shape) tensor."""
    try:
        full = np.broadcast_to(np.asarray(slope), (1,) + tuple(shape))[0]
    except ValueError:
        imp.refuse(f"a slope of shape {list(np.shape(slope))} that does not broadcast to "
                   f"the input's {list(shape)}")
    rows = full.reshape(shape[0], -1)
    if not np.all(rows == rows[:, :1]):
        imp.refuse("a slope that differs within a channel: nngraph's prelu learns one "
                   "slope per channel")
    return np.ascontiguousarray(rows[:, 0])


@imports("PRelu")
def prelu(imp: Importer, node):
    slope = imp.const(node.input[1])
    if slope is None:
        imp.refuse("its slope is computed from data; nngraph's prelu holds it")
    shape = imp.shape(node.input[0])
    if not shape:
        imp.refuse("a scalar per sample: nngraph's prelu needs (channels, ...)")
    slope = np.asarray(slope)
    if imp.opset < 7 and slope.ndim == 1 and slope.size == shape[0]:
        a = np.ascontiguousarray(slope)          # PRelu-6: a slope per channel (axis 1)
    else:
        a = _slope_per_channel(imp, slope, shape)   # PRelu-7 on: numpy broadcasting
    x = imp.layer_input(node.input[0])
    name = imp.add_layer("prelu", [x], shape, params={"a": a})
    imp.set(node.output[0], Value(name, shape))
