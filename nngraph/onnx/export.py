"""A model -> an ONNX ModelProto of its inference graph, and the file it is written to.

The walk follows the network in its topological order and converts only the layers the
outputs need (losses and what only they read are training-time). Each layer's value is a
tensor named after the layer; a layer with an `activation:` computes '<layer>:preact' and its
activation node '<layer>:<activation>' writes the layer's tensor, as nngraph's lowered graph
splits it (passes/lower.py). Graph inputs are the feature inputs, graph outputs the
network's outputs, both with the symbolic batch dimension "batch".
"""
from __future__ import annotations

import os
import secrets

import networkx as nx
import numpy as np
import onnx
from onnx import helper

# the converter modules register themselves in registry.py as they are imported
from . import activations, generative, layers, recurrent  # noqa: F401
from .base import DEFAULT_OPSET, MIN_OPSET, ExportError
from .builder import Builder
from .registry import ACTIVATIONS, CONVERTERS, Layer

BATCH = "batch"

DOUBLE_OPS = frozenset((
    "Gemm", "MatMul", "Add", "Sum", "Mul", "Div", "Neg", "Exp", "MaxPool",
    "BatchNormalization", "Relu", "Tanh", "Sigmoid", "Softplus", "Elu", "LeakyRelu",
    "Identity", "Softmax", "LogSoftmax", "Flatten", "Clip", "Concat", "Transpose", "Reshape",
    "Squeeze", "Gather", "Greater", "Cast"))
"""The ONNX ops that ONNX Runtime's CPU provider runs in float64. Conv, ConvTranspose,
AveragePool, GlobalAveragePool, Resize, RNN, GRU and LSTM it runs in float32 only."""

MAX_BYTES = (1 << 31) - (1 << 24)
"""protobuf's 2 GiB message limit, less room for the graph itself."""


def build(model, opset=None, dtype=None) -> onnx.ModelProto:
    """The checked ModelProto of `model`'s inference graph (see nngraph.onnx.to_onnx)."""
    opset, dtype = _opset(opset), _dtype(model, dtype)
    net = model.net
    _check_size(model, dtype)
    b = Builder(dtype)
    # a sampled input (a generator's codes) is an input of the ONNX graph: its caller draws it
    read = [n for n in net.inputs if n in net.feature_inputs or n in net.sampled_inputs]
    inputs = [_value_info(b, name, net.inputs[name].dtype, net.inputs[name].shape)
              for name in read]
    for name in read:
        b.declare(name)
    outputs = list(dict.fromkeys(net.outputs))
    if not outputs:
        raise ExportError(f"cannot export '{net.name}' to ONNX: it has no outputs")
    for name in _needed(net, outputs):
        _convert(b, model, name)
    if dtype == np.float64:
        _check_double(b, net)
    graph = helper.make_graph(
        b.nodes, net.name, inputs,
        [_value_info(b, o, net.node(o)["dtype"], net.node(o)["shape"]) for o in outputs],
        b.inits)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="nngraph",
                              producer_version=_version(), doc_string=net.description or "")
    proto.ir_version = helper.find_min_ir_version_for(opsets)   # what older runtimes read
    onnx.checker.check_model(proto, full_check=True)            # a failure is a bug here
    return proto


def _needed(net, outputs) -> list:
    """The layers the outputs depend on, in the network's order."""
    need = set(outputs)
    for o in outputs:
        need |= nx.ancestors(net.graph, o)
    return [n for n in net.order() if n in need and net.node(n)["kind"] == "layer"]


def _convert(b: Builder, model, name: str) -> None:
    """One layer's nodes, then its activation's; refused before any node is written when
    nngraph has no ONNX form of its op or activation."""
    d = model.net.node(name)
    op = d["op"].name
    act = d["activation"]
    if op not in CONVERTERS:
        raise ExportError(f"cannot export layer '{name}' ({op}) to ONNX: nngraph has no "
                          f"ONNX form of the op '{op}'")
    if act is not None and act[0] not in ACTIVATIONS:
        raise ExportError(f"cannot export layer '{name}' ({op}) to ONNX: nngraph has no "
                          f"ONNX form of its activation '{act[0]}'")
    layer = Layer(name, op, d["attrs"], list(d["inputs"]),
                  [tuple(model.net.node(i)["shape"]) for i in d["inputs"]],
                  tuple(d["shape"]), f"{name}:preact" if act else name,
                  {p: model.params[f"{name}.{p}"] for p in d["params"]},
                  dict(model.state.get(name, {})))
    for p, key in (d.get("borrowed") or {}).items():      # a layer that shares parameters
        layer.params[p], layer.keys[p] = model.params[key], key
    b.layer = (name, op)
    CONVERTERS[op](b, layer)
    if act is not None:
        ACTIVATIONS[act[0]](b, act[0], f"{name}:{act[0]}", act[1], layer.out, name)


def _value_info(b: Builder, name: str, dtype: str, shape):
    """A graph input's or output's type: floats in the export's dtype, integers as declared."""
    elem = b.elem_type if str(dtype).startswith("float") else \
        helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return helper.make_tensor_value_info(name, elem, [BATCH] + [int(s) for s in shape])


def _opset(opset) -> int:
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or \
            not MIN_OPSET <= opset <= newest:
        raise ExportError(f"ONNX opset must be an integer from {MIN_OPSET} to {newest} (the "
                          f"newest that onnx {onnx.__version__} knows), got {opset!r}")
    return int(opset)


def _dtype(model, dtype) -> np.dtype:
    if dtype is None:
        return np.dtype(model.dtype)
    if str(dtype) not in ("float32", "float64"):
        raise ExportError(f"ONNX export dtype must be float32 or float64, got {dtype!r}")
    return np.dtype(str(dtype))


def _check_double(b: Builder, net) -> None:
    """A float64 export only where ONNX Runtime would run every node in float64."""
    for node in b.nodes:
        if node.op_type not in DOUBLE_OPS:
            layer, op = b.owner[node.name]
            raise ExportError(
                f"cannot export '{net.name}' in float64: ONNX Runtime runs {node.op_type} "
                f"(layer '{layer}', {op}) in float32 only, so such networks export in float32 "
                "only: export_onnx(path, dtype='float32') (nngraph export --dtype float32) "
                "writes its weights rounded to float32")


def _check_size(model, dtype) -> None:
    total = sum(np.size(v) for v in model.params.values()) * np.dtype(dtype).itemsize
    if total > MAX_BYTES:
        raise ExportError(f"cannot export '{model.net.name}' to ONNX: its parameters take "
                          f"{total / (1 << 30):.1f} GiB, more than an ONNX file without "
                          "external data holds (2 GiB)")


def _version() -> str:
    from ..version import __version__
    return __version__


def write(proto, path) -> str:
    """Write `proto` to `path`, replacing any file there atomically: a failed write leaves
    the file as it was and no temporary file behind. Returns the path."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise ExportError(f"export_onnx expects a path, got {type(path).__name__}") from None
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ExportError(f"{path}: cannot write: it is a directory")
    if not os.path.isdir(directory):
        raise ExportError(f"{path}: cannot write: directory {directory} does not exist")
    data = proto.SerializeToString()
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    created = False
    try:
        # created as any new file is (0o666 less the umask), and never over another file
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        created = True
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:        # KeyboardInterrupt too: never leave the temp file
        if created and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ExportError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
    return path
