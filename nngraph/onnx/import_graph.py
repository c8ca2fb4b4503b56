"""ONNX -> an nngraph spec (a dict) and the weights to set into its model.

The walk: read the file, infer static shapes and fold constants (fold.py), then convert each
remaining node in the file's (topological) order with the converter registered for its op
type (import_ops.py, import_recurrent.py). A converter maps the ONNX tensors it writes to
nngraph values (`Value`: a layer or input name and its per-sample shape) and adds layers.
Last, an activation layer that alone reads a layer without one becomes that layer's
`activation:`, as nngraph's spec writes it and export splits it.

Names: a layer takes its ONNX node's name (else its first output's, else its op's),
made a valid nngraph name (letters, digits and '_') and unique; inputs keep their ONNX
names made valid the same way.
"""
from __future__ import annotations

import os

import numpy as np
import onnx

from ..ir import ident as ident_name
from . import fold
from .base import OnnxImportError
from .import_core import ACTIVATION_OPS, DTYPES, IMPORTERS, Importer, Value, sanitise

__all__ = ["read", "to_spec", "set_weights", "Importer", "Value"]


def read(path) -> "onnx.ModelProto":
    try:
        return onnx.load(os.fspath(path))
    except FileNotFoundError:
        raise OnnxImportError(f"{path}: no such file") from None
    except Exception as e:
        raise OnnxImportError(f"{path}: not a readable ONNX model: {e}") from None


def to_spec(model, source: str = "<onnx>") -> tuple[dict, dict, dict]:
    """(spec dict, {layer: {param: array}}, {layer: {state: array}}) of an ONNX model."""
    # the converter modules register themselves in IMPORTERS as they are imported
    from . import import_extra  # noqa: F401  (Selu, Softsign, GlobalMaxPool)
    from . import (import_channelwise, import_ops, import_patterns,  # noqa: F401
                   import_recurrent, import_shapes, import_spatial)
    imp = Importer(model, source)
    imp.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                     1)
    graph = model.graph
    imp.shapes = fold.infer_shapes(model)
    imp.consts, folded = fold.fold(graph, imp.shapes, imp.opset)
    inputs = _inputs(imp, graph)
    _count_uses(imp, graph, folded)
    for i, node in enumerate(graph.node):
        if i in folded:
            continue
        imp.node = node
        if node.domain not in ("", "ai.onnx") or node.op_type not in IMPORTERS:
            domain = f" of domain '{node.domain}'" if node.domain not in ("", "ai.onnx") else ""
            imp.refuse(f"nngraph has no layer for the operator {node.op_type}{domain}")
        IMPORTERS[node.op_type](imp, node)
    imp.node = None
    outputs = _outputs(imp, graph)
    _fuse_activations(imp, outputs)
    spec = {"nngraph": 1, "name": sanitise(graph.name or os.path.basename(source)) or "onnx",
            "inputs": inputs, "layers": imp.layers, "outputs": outputs}
    if model.doc_string or graph.doc_string:
        spec["description"] = (graph.doc_string or model.doc_string).strip()[:500]
    return spec, imp.params, imp.state


def _inputs(imp: Importer, graph) -> dict:
    """Spec inputs from the graph's data inputs: per-sample shapes and dtypes."""
    out = {}
    for v in fold.data_inputs(graph):
        t = v.type.tensor_type
        if t.elem_type not in DTYPES:
            imp.refuse(f"the input '{v.name}' has an element type "
                       f"{onnx.TensorProto.DataType.Name(t.elem_type)} nngraph has no input of")
        dims = list(t.shape.dim)
        if not dims or any(not d.HasField("dim_value") for d in dims[1:]):
            imp.refuse(f"the input '{v.name}' needs a batch dimension first and static "
                       "dimensions after it")
        if dims[0].HasField("dim_value"):
            imp.batch_sizes.add(dims[0].dim_value)
        name = imp.unique(v.name)
        shape = tuple(d.dim_value for d in dims[1:])
        out[name] = {"shape": list(shape), "dtype": DTYPES[t.elem_type]}
        imp.values[v.name] = Value(name, shape)
        imp._shapes[name] = shape
    if not out:
        imp.refuse("the graph has no input that is fed at run time")
    return out


def _count_uses(imp: Importer, graph, folded) -> None:
    for i, node in enumerate(graph.node):
        if i not in folded:
            for n in node.input:
                if n:
                    imp.uses[n] = imp.uses.get(n, 0) + 1
                    imp.readers.setdefault(n, []).append(node.op_type)
    for o in graph.output:
        imp.uses[o.name] = imp.uses.get(o.name, 0) + 1


def _outputs(imp: Importer, graph) -> list:
    """The layers the graph's outputs are, in order (a reshape added where nngraph's value is
    shaped otherwise than ONNX's)."""
    names = []
    makers = {t: node for node in graph.node for t in node.output}
    for o in graph.output:
        if o.name not in imp.values:
            imp.refuse(f"the output '{o.name}' is a constant or is not computed from an input")
        imp.node = makers.get(o.name)      # a reshape added here is named after its maker
        name = imp.layer_input(o.name)
        if name not in {d["name"] for d in imp.layers}:
            imp.refuse(f"the output '{o.name}' is a graph input itself; nngraph's outputs "
                       "are layers")
        names.append(name)
    return names


def _fuse_activations(imp: Importer, outputs: list) -> None:
    """An activation layer that is the only reader of a layer without an activation becomes
    that layer's `activation:` (the layer keeps its name), as export writes a layer's
    activation as a node of its own."""
    readers: dict = {}
    for d in imp.layers:
        for i in d["in"]:
            readers[i] = readers.get(i, 0) + 1
    by_name = {d["name"]: d for d in imp.layers}
    for d in list(imp.layers):
        if d["op"] not in ACTIVATION_OPS or len(d["in"]) != 1:
            continue
        prev = by_name.get(d["in"][0])
        if prev is None or prev["op"] in ACTIVATION_OPS or "activation" in prev or \
                readers.get(prev["name"]) != 1 or prev["name"] in outputs:
            continue
        form = ident_name(f"{prev['name']}:{d['op']}")       # the activation's value
        if any(ident_name(n) == form for n in by_name if n != d["name"]):
            continue
        attrs = {k: v for k, v in d.items() if k not in ("op", "name", "in")}
        prev["activation"] = {d["op"]: attrs} if attrs else d["op"]
        imp.layers.remove(d)
        for other in imp.layers:
            other["in"] = [prev["name"] if i == d["name"] else i for i in other["in"]]
        outputs[:] = [prev["name"] if o == d["name"] else o for o in outputs]
        by_name.pop(d["name"])


def set_weights(model, params: dict, state: dict) -> None:
    """Copy imported weights and statistics into a compiled model's own arrays."""
    for layer, ps in params.items():
        for p, arr in ps.items():
            target = model.params[f"{layer}.{p}"]
            target[...] = np.asarray(arr).reshape(target.shape)
    for layer, ss in state.items():
        for k, arr in ss.items():
            target = model.state[layer][k]
            target[...] = np.asarray(arr).reshape(target.shape)
