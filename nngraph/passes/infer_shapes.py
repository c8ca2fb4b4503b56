"""Shape inference: every node's output shape (without the batch dimension), its parameter
shapes and its dtype, in topological order, before anything is allocated or compiled.

A shape rule that fails reports at the layer (or at the attribute to blame) and the layers
downstream of it are skipped, so one mistake gives one error.
"""
from __future__ import annotations

import math

import networkx as nx

from ..errors import Reporter
from ..shapes import show_shape
from ..ops import REGISTRY
from ..ops.base import ShapeError

MAX_PARAMS = 1 << 31                # parameters in one tensor, and in the whole network
MAX_ACTIVATION = 1 << 28            # elements of one layer's output, per sample
INT_DTYPES = ("int64", "int32")


def infer_shapes(g: nx.DiGraph, rep: Reporter, src=None) -> nx.DiGraph:
    failed = set()
    index = {n: i for i, n in enumerate(g.nodes)}
    for name in nx.lexicographical_topological_sort(g, key=index.__getitem__):
        d = g.nodes[name]
        if d["kind"] == "input":
            continue
        if d.get("broken") or any(i in failed for i in d["inputs"]):
            failed.add(name)
            continue
        if not _infer_node(g, name, d, rep, src):
            failed.add(name)
    return g


def _at(d, src, attr):
    if src is None:
        return d["pos"]
    if attr and attr in d.get("attr_paths", {}):
        return src.at(d["attr_paths"][attr])
    return src.at(d["path"] + (attr,)) if attr else d["pos"]


def _infer_node(g, name, d, rep, src) -> bool:
    op, a = d["op"], d["attrs"]
    in_shapes = [g.nodes[i]["shape"] for i in d["inputs"]]
    in_dtypes = [g.nodes[i]["dtype"] for i in d["inputs"]]
    who = f"{'loss' if d['kind'] == 'loss' else 'layer'} '{name}' ({op.name})"
    for j, (src_name, dt) in enumerate(zip(d["inputs"], in_dtypes)):
        wants_int = j in op.int_inputs
        is_int = dt in INT_DTYPES
        if wants_int and not is_int:
            rep.error(d["pos"], "E012", f"{who}: input '{src_name}' must hold integer indices "
                                        f"(dtype int64), but it is {dt}")
            return False
        if is_int and not wants_int and (d["kind"] == "layer" or j == 0):
            rep.error(d["pos"], "E012",
                      f"{who}: input '{src_name}' holds {dt} values; this op needs floats"
                      f"{' (use an embedding for token indices)' if d['kind'] == 'layer' else ''}")
            return False
    try:
        shape = tuple(op.shape(a, in_shapes))
        if d["activation"] is not None:
            act_name, act_attrs = d["activation"]
            shape = tuple(REGISTRY[act_name].shape(act_attrs, [shape]))
        params = op.params(a, in_shapes)
        state = op.state(a, in_shapes)
    except ShapeError as e:
        got = ", ".join(f"'{i}' {show_shape(s)}" for i, s in zip(d["inputs"], in_shapes))
        rep.error(_at(d, src, e.attr), e.code, f"{who}: {e} [inputs: {got}]")
        return False
    if any((not isinstance(s, int)) or s < 1 for s in shape) and d["kind"] != "loss":
        rep.error(d["pos"], "E030", f"{who}: output shape {show_shape(shape)} has an empty "
                                    f"dimension; the input {show_shape(in_shapes[0])} is too "
                                    "small for this layer")
        return False
    size = math.prod(shape)
    if size > MAX_ACTIVATION:
        dims = "x".join(map(str, shape))
        rep.error(d["pos"], "E031", f"{who}: the output has {dims} = {size:,} values per "
                                    f"sample, more than the limit of {MAX_ACTIVATION:,}")
        return False
    d["shape"], d["params"], d["state"] = shape, params, state
    d["dtype"] = "float32" if d["kind"] == "layer" else "float32"
    return True
