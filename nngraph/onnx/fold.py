"""Static shapes and constant folding for ONNX import.

An ONNX file computes much at run time that nngraph's spec holds as plain numbers: weights
behind Constant, Identity or ConstantOfShape nodes, reshape targets assembled by
Shape -> Gather -> Concat chains. Import folds every node whose inputs are all constants
into a constant, so that the converters (import_ops.py) see only the nodes that compute
on data, each with constant operands where nngraph wants numbers.

The batch dimension is what makes Shape chains dynamic. Shapes are inferred (onnx's own
shape inference) with every data input's first dimension set to BATCH, a number that no real
dimension is: a folded reshape target that holds it, in first place, keeps the batch.
Folding evaluates nodes with onnx's reference evaluator, so each op means what the ONNX
specification says at the model's opset, with no hand-written kernels here.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

BATCH = 7919
"""The stand-in batch size for shape inference: a prime no layer width is likely to be."""

NEVER_FOLD = frozenset(("RandomNormal", "RandomUniform", "RandomNormalLike",
                        "RandomUniformLike", "Multinomial", "Bernoulli"))
"""Ops with no inputs or constant inputs whose value is not a constant."""


def data_inputs(graph) -> list:
    """The graph inputs that are fed at run time: those without an initializer (older files
    list every initializer among the inputs as well)."""
    inits = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in inits]


def infer_shapes(model) -> dict:
    """{tensor name: full shape tuple (ints, None where unknown), or None}, with BATCH as
    the first dimension of every data input."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    fixed = set()
    for v in data_inputs(m.graph):
        dims = v.type.tensor_type.shape.dim
        if len(dims):
            if dims[0].HasField("dim_value"):
                fixed.add(dims[0].dim_value)
            dims[0].Clear()
            dims[0].dim_value = BATCH
    _batch_first_targets(m.graph, fixed)
    del m.graph.value_info[:]
    try:
        m = shape_inference.infer_shapes(m, data_prop=True)
    except Exception:                 # old or odd files: fall back to what is declared
        pass
    out = {}
    for v in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        t = v.type.tensor_type
        if t.HasField("shape"):
            out[v.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                for d in t.shape.dim)
    return out


def _batch_first_targets(graph, fixed: set) -> None:
    """Reshape targets held in initializers whose first entry is the batch size a file was
    exported with (Caffe2's ShuffleNet reshapes to [1, g, C/g, H, W]) get BATCH there, as
    the import reads them (import_shapes.per_sample): else inference gives the tensors
    after them a batch of 1, and a Concat of one of them with a BATCH tensor no shape."""
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        t = inits.get(node.input[1]) if node.op_type == "Reshape" else None
        if t is None:
            continue
        target = numpy_helper.to_array(t)
        if target.ndim == 1 and target.size and int(target[0]) in fixed:
            target = target.copy()
            target[0] = BATCH
            t.CopyFrom(numpy_helper.from_array(target, t.name))


def constant_of(node) -> np.ndarray:
    """The value of a Constant node, whichever attribute holds it."""
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name in ("value_float", "value_int", "value_floats", "value_ints"):
            v = helper.get_attribute_value(a)
            return np.asarray(v, dtype=np.float32 if "float" in a.name else np.int64)
    raise ValueError(f"Constant node '{node.name}' holds no value nngraph reads")


def _shape_of(node, shapes) -> np.ndarray | None:
    """Shape's output where the input's shape is fully known (start/end of opset 15)."""
    shape = shapes.get(node.input[0])
    if shape is None or any(d is None for d in shape):
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", None)
    return np.asarray(shape[start:end], dtype=np.int64)


def evaluate(node, values: list, opset: int) -> list:
    """Run one node on constant inputs with onnx's reference evaluator, at `opset`."""
    from onnx.reference import ReferenceEvaluator
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for n, v in zip(node.input, values) if n]
    outs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None)
            for n in node.output if n]
    graph = helper.make_graph([node], "fold", ins, outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    feeds = {n: v for n, v in zip(node.input, values) if n}
    return ReferenceEvaluator(model).run(None, feeds)


def fold(graph, shapes: dict, opset: int) -> tuple[dict, set]:
    """(constants {tensor name: array}, the indices of the nodes folded away). A node is
    folded when all its inputs are constants (or, for Shape, its input's shape is static)."""
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    folded = set()
    for i, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type in NEVER_FOLD:
            continue
        if node.op_type == "Constant":
            values = [constant_of(node)]
        elif node.op_type == "Shape":
            values = [_shape_of(node, shapes)]
            if values[0] is None:
                continue
        elif all(n in consts for n in node.input if n) and any(node.input):
            try:
                values = evaluate(node, [consts.get(n) for n in node.input], opset)
            except Exception:           # left to the converters, which say what is wrong
                continue
        else:
            continue
        for name, v in zip([n for n in node.output if n], values):
            consts[name] = np.asarray(v)
        folded.add(i)
    return consts, folded
