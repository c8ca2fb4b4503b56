"""ONNX activations, identities, reshapes, upsampling and table lookups -> nngraph layers.

Activations become layers of their own here; import_graph.py then makes each one that alone
reads a layer that layer's `activation:`. Reshapes keep the batch first: a reshape target's
first entry must be 0, -1 or the batch (fold.BATCH after shape folding, or the batch size
a file was exported with), and the rest is the per-sample shape nngraph's reshape takes.
"""
from __future__ import annotations

import math

import numpy as np

from . import fold
from .import_core import Importer, Value, imports
from .import_spatial import shuffle, split_channels

SIMPLE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus"}


def _activation(imp: Importer, node, op: str, **attrs):
    x = imp.layer_input(node.input[0])
    shape = imp.shape(node.input[0])
    name = imp.add_layer(op, [x], shape, **attrs)
    imp.set(node.output[0], Value(name, shape))


@imports(*SIMPLE)
def simple(imp: Importer, node):
    _activation(imp, node, SIMPLE[node.op_type])


@imports("Elu", "LeakyRelu")
def with_alpha(imp: Importer, node):
    default = 1.0 if node.op_type == "Elu" else 0.01
    alpha = float(imp.attrs().get("alpha", default))
    if alpha < 0:
        imp.refuse(f"alpha={alpha}: nngraph's {node.op_type} takes alpha >= 0")
    op = "elu" if node.op_type == "Elu" else "leaky_relu"
    _activation(imp, node, op, alpha=alpha if alpha != default else None)


@imports("Softmax", "LogSoftmax")
def softmax(imp: Importer, node):
    """nngraph's softmax is over the last axis. Before opset 13 ONNX's is over everything
    from `axis` on, flattened: the same over a flat view of those axes. From opset 13 it is
    over `axis` alone, the same where every axis after it has size 1 (SqueezeNet's over
    (N, C, 1, 1)); any other axis would need a transpose and is refused."""
    shape = imp.shape(node.input[0])
    rank = len(shape) + 1
    axis = imp.attrs().get("axis", -1 if imp.opset >= 13 else 1)
    op = "softmax" if node.op_type == "Softmax" else "log_softmax"
    k = axis % rank
    if k == rank - 1:
        return _activation(imp, node, op)
    if k == 0:
        imp.refuse(f"axis={axis} is the batch: nngraph's softmax is within each sample")
    if imp.opset >= 13 and any(d != 1 for d in shape[k:]):
        imp.refuse(f"axis={axis} of a rank-{rank} tensor with axes {list(shape[k:])} after "
                   "it: nngraph's softmax is over the last axis")
    _flat_softmax(imp, node, op, shape[:k - 1] + (math.prod(shape[k - 1:]),))


def _flat_softmax(imp: Importer, node, op: str, flat: tuple):
    """The softmax over the last axis of a `flat` view of the input: a reshape to it (none
    where nngraph's value is shaped so already, a global pool's (C,)), and the result keeps
    ONNX's shape as its onnx_shape, reshaped back where something reads it so (at once for
    a graph output, while the node is there to name the reshape)."""
    v = imp.data(node.input[0])
    if v.shape == flat and not v.view:
        x = v.name
    else:
        x = imp.add_layer("reshape", [imp.layer_input(node.input[0])], flat, suffix="flat",
                          shape=list(flat))
    name = imp.add_layer(op, [x], flat)
    imp.set(node.output[0], Value(name, flat, onnx_shape=imp.shape(node.input[0])))
    if node.output[0] in {o.name for o in imp.model.graph.output}:
        imp.layer_input(node.output[0])      # a graph output is ONNX-shaped: reshape it now


@imports("Identity", "Dropout")
def identity(imp: Importer, node):
    """Dropout is the identity at inference; its mask output has no nngraph form."""
    if len(node.output) > 1 and node.output[1] and imp.uses.get(node.output[1]):
        imp.refuse("its mask output is read: nngraph's dropout has none")
    imp.set(node.output[0], imp.data(node.input[0]))


def per_sample(imp: Importer, target, in_shape) -> tuple:
    """The per-sample shape of Reshape(x, target) for x of per-sample shape `in_shape`."""
    target = [int(t) for t in target]
    batches = {0, -1, fold.BATCH} | set(imp.batch_sizes)
    if not target or target[0] not in batches:
        imp.refuse(f"a reshape to {target} does not keep the batch first")
    rest = [in_shape[i] if t == 0 and i < len(in_shape) else t
            for i, t in enumerate(target[1:])]
    total = math.prod(in_shape)
    if rest.count(-1) == 1:
        known = math.prod(t for t in rest if t != -1)
        if known == 0 or total % known:
            imp.refuse(f"a reshape to {target} of {list(in_shape)} per sample")
        rest[rest.index(-1)] = total // known
    if -1 in rest or math.prod(rest) != total:
        imp.refuse(f"a reshape to {target} of {list(in_shape)} per sample: nngraph reshapes "
                   "within each sample")
    return tuple(rest)


def reshape_to(imp: Importer, node, target: tuple, op: str = "reshape") -> None:
    """The node's output as `target` per sample: the input itself when it is shaped so
    already, else a flatten or reshape layer."""
    v = imp.data(node.input[0])
    if v.view:
        from .import_recurrent import reshape_view
        return reshape_view(imp, node, v, target)
    if target == v.shape:
        return imp.set(node.output[0], Value(v.name, v.shape))
    if target == (v.onnx_shape or v.shape):
        return imp.set(node.output[0], v)
    x = imp.layer_input(node.input[0])
    if op == "flatten" and len(target) == 1:
        name = imp.add_layer("flatten", [x], target)
    else:
        name = imp.add_layer("reshape", [x], target, shape=list(target))
    imp.set(node.output[0], Value(name, target))


@imports("Flatten")
def flatten(imp: Importer, node):
    axis = imp.attrs().get("axis", 1)
    shape = imp.shape(node.input[0])
    axis = axis % (len(shape) + 1)
    if axis != 1:
        imp.refuse(f"axis={axis}: nngraph flattens each sample whole (axis 1)")
    reshape_to(imp, node, (math.prod(shape),), op="flatten")


@imports("Reshape")
def reshape(imp: Importer, node):
    target = imp.const(node.input[1])
    if target is None:
        imp.refuse("its shape is computed at run time, not folded to a constant")
    v = imp.data(node.input[0])
    shape = per_sample(imp, target, v.onnx_shape or v.shape)
    if not split_channels(imp, node, v, shape):        # a channel shuffle's first reshape
        reshape_to(imp, node, shape)


@imports("Squeeze", "Unsqueeze")
def squeeze(imp: Importer, node):
    """Squeezing or unsqueezing axes after the batch is a reshape within each sample."""
    v = imp.data(node.input[0])
    axes = imp.attrs().get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node.input[1])
        if axes is None:
            imp.refuse("its axes are computed at run time")
    if v.view:
        from .import_recurrent import squeeze_view
        return squeeze_view(imp, node, v, None if axes is None else [int(a) for a in axes])
    out = imp.shapes.get(node.output[0])
    if out is None or not out or out[0] != fold.BATCH or any(d is None for d in out):
        imp.refuse("it squeezes or unsqueezes the batch axis, or its output shape is unknown")
    reshape_to(imp, node, tuple(out[1:]))


@imports("Transpose")
def transpose(imp: Importer, node):
    from .import_recurrent import transpose_view
    v, perm = imp.data(node.input[0]), list(imp.attrs().get("perm", []))
    if not shuffle(imp, node, v, perm):                # import_spatial.py
        transpose_view(imp, node, v, perm)


def _scales(imp: Importer, node):
    """Resize's or Upsample's scale per axis, from scales or sizes (inputs or attribute)."""
    a = imp.attrs()
    if "scales" in a:
        return list(a["scales"])
    names = list(node.input[1:])
    if node.op_type == "Resize" and imp.opset >= 11:
        scales = imp.const(names[1]) if len(names) > 1 and names[1] else None
        sizes = imp.const(names[2]) if len(names) > 2 and names[2] else None
    else:
        scales, sizes = (imp.const(names[0]) if names else None), None
    if scales is not None and scales.size:
        return list(scales)
    if sizes is not None and sizes.size:
        shape = imp.shape(node.input[0])
        return [1.0, 1.0] + [o / i for o, i in zip(list(sizes)[2:], shape[1:])]
    imp.refuse("its scales or sizes are computed at run time")


@imports("Resize", "Upsample")
def resize(imp: Importer, node):
    """Nearest-neighbour upsampling by integer factors: output cell i reads input i // s,
    which is what 'asymmetric' coordinates with 'floor' give, and the half-pixel ones with
    rounding too, at integer scales."""
    a = imp.attrs()
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    coord = a.get("coordinate_transformation_mode", b"half_pixel" if imp.opset >= 11 else
                  b"asymmetric")
    coord = coord.decode() if isinstance(coord, bytes) else coord
    nearest = a.get("nearest_mode", b"round_prefer_floor" if imp.opset >= 11 else b"floor")
    nearest = nearest.decode() if isinstance(nearest, bytes) else nearest
    if mode != "nearest":
        imp.refuse(f"mode={mode}: nngraph's upsample2d is nearest-neighbour")
    ok = (coord == "asymmetric" and nearest == "floor") or \
        (coord in ("half_pixel", "pytorch_half_pixel") and nearest.startswith("round"))
    if not ok:
        imp.refuse(f"coordinate_transformation_mode={coord} with nearest_mode={nearest}: "
                   "not nngraph's nearest-neighbour copy")
    scales = _scales(imp, node)
    if len(scales) != 4 or scales[:2] != [1.0, 1.0] or \
            any(s != int(s) or s < 1 for s in scales[2:]):
        imp.refuse(f"scales {scales}: nngraph's upsample2d scales height and width of "
                   "(N, C, H, W) by integers")
    x = imp.layer_input(node.input[0])
    shape = imp.shape(node.output[0])
    name = imp.add_layer("upsample2d", [x], shape, size=[int(s) for s in scales[2:]])
    imp.set(node.output[0], Value(name, shape))


@imports("Gather")
def gather(imp: Importer, node):
    """Rows of a constant table for computed indices: an embedding layer."""
    table = imp.const(node.input[0])
    if table is None or table.ndim != 2 or imp.attrs().get("axis", 0) != 0:
        imp.refuse("a gather from computed data or along an axis other than 0 of a "
                   "constant matrix: only an embedding lookup maps to nngraph")
    x = imp.layer_input(node.input[1])
    shape = imp.shape(node.output[0])
    name = imp.add_layer("embedding", [x], shape, params={"W": np.asarray(table)},
                         vocab=int(table.shape[0]), dim=int(table.shape[1]))
    imp.set(node.output[0], Value(name, shape))
