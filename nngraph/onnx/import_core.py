"""What the ONNX import's modules share: the converter registry, the Value an ONNX tensor
is in nngraph, and the Importer that converters read constants and shapes from and add
layers to. A leaf of the import (it imports no other import module), so that the converter
modules and the walk (import_graph.py) import it and not each other: no import cycle.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import onnx

from ..ir import ident as ident_name
from .base import OnnxImportError

ACTIVATION_OPS = ("relu", "sigmoid", "tanh", "softplus", "elu", "leaky_relu", "softmax", "step",
                  "ramp", "gaussian",
                  "selu", "softsign",
                  "log_softmax")
DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64",
          onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32"}

IMPORTERS: dict = {}


def imports(*op_types: str):
    """Register the converter of ONNX `op_types`: fn(importer, node)."""
    def register(fn):
        for op in op_types:
            IMPORTERS[op] = fn
        return fn
    return register


@dataclass
class Value:
    """What an ONNX tensor is in nngraph: layer (or input) `name` with per-sample `shape`.
    `onnx_shape` is the tensor's own per-sample shape where it differs (a global average
    pool is (C,) in nngraph, (C, 1, 1) in ONNX); `view` marks the time-major and
    direction-axis forms of recurrent layers' tensors ('' for an ordinary tensor)."""
    name: str
    shape: tuple
    onnx_shape: tuple | None = None
    view: str = ""


@dataclass
class Importer:
    model: object                       # the onnx.ModelProto
    source: str                         # the file, for messages
    opset: int = 0
    shapes: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)      # ONNX tensor -> Value
    layers: list = field(default_factory=list)       # spec layer dicts, in order
    params: dict = field(default_factory=dict)       # layer -> {param: array}
    state: dict = field(default_factory=dict)        # layer -> {running_mean: ..}
    used: set = field(default_factory=set)           # names taken
    uses: dict = field(default_factory=dict)         # ONNX tensor -> number of readers
    readers: dict = field(default_factory=dict)      # ONNX tensor -> op types reading it
    node: object = None                              # the node being converted
    _shapes: dict = field(default_factory=dict)      # layer or input -> per-sample shape
    batch_sizes: set = field(default_factory=set)    # the inputs' fixed batch sizes, if any

    # ---------------------------------------------------------------- errors
    def refuse(self, reason: str, node=None):
        """The one error of an import: the operator, the node, the opset and why."""
        node = node or self.node
        op = node.op_type if node is not None else None
        where = f"{op} node '{node.name or node.output[0]}' (opset {self.opset})" \
            if node is not None else f"opset {self.opset}"
        raise OnnxImportError(f"cannot import {self.source}: {where}: {reason}",
                              op_type=op or "(graph input)",
                              node=node.name if node is not None else None,
                              opset=self.opset, reason=reason)

    # ---------------------------------------------------------------- tensors
    def const(self, tensor: str):
        """The folded value of `tensor`, or None when it is computed from data."""
        return self.consts.get(tensor) if tensor else None

    def data(self, tensor: str) -> Value:
        """The nngraph value of a data tensor; a constant where data is wanted is refused."""
        if tensor in self.values:
            return self.values[tensor]
        if tensor in self.consts:
            self.refuse(f"its input '{tensor}' is a constant where nngraph's layer reads data")
        self.refuse(f"its input '{tensor}' is not computed by any node nngraph imported")

    def layer_input(self, tensor: str) -> str:
        """The name of a layer or input holding `tensor` as ONNX shapes it (batch-first),
        adding a reshape where nngraph's value is shaped otherwise (a global pool's (C,))."""
        v = self.data(tensor)
        if v.view:
            self.refuse(f"its input '{tensor}' is a time-major sequence, which nngraph's "
                        "layers do not read (nngraph's sequences are batch-first)")
        if v.onnx_shape is None or v.onnx_shape == v.shape:
            return v.name
        name = self.add_layer("reshape", [v.name], v.onnx_shape, suffix="reshape",
                              shape=list(v.onnx_shape))
        self.values[tensor] = Value(name, v.onnx_shape)
        return name

    def shape(self, tensor: str) -> tuple:
        """The static per-sample ONNX shape of `tensor` (without the batch)."""
        s = self.shapes.get(tensor)
        if s is None or not s or any(d is None for d in s[1:]):
            if tensor in self.values:
                v = self.values[tensor]
                return v.onnx_shape or v.shape
            self.refuse(f"the shape of '{tensor}' is not static")
        return tuple(s[1:])

    def attrs(self, node=None) -> dict:
        return {a.name: onnx.helper.get_attribute_value(a) for a in (node or self.node).attribute}

    def set(self, tensor: str, value: Value) -> None:
        self.values[tensor] = value

    # ---------------------------------------------------------------- layers
    def add_layer(self, op: str, ins: list, out_shape: tuple, suffix: str = "", params=None,
                  state=None, **attrs) -> str:
        """Append a layer read from `ins` (layer or input names); returns its name."""
        base = _node_name(self.node)
        name = self.unique(f"{base}_{suffix}" if suffix else base)
        layer = {"op": op, "name": name, "in": list(ins)}
        layer.update({k: v for k, v in attrs.items() if v is not None})
        self.layers.append(layer)
        self._shapes[name] = tuple(out_shape)
        if params:
            self.params[name] = dict(params)
        if state:
            self.state[name] = dict(state)
        return name

    def layer(self, name: str) -> dict | None:
        return next((d for d in self.layers if d["name"] == name), None)

    def unique(self, raw: str) -> str:
        """A valid nngraph name from `raw`: letters, digits and '_', not taken before, and
        not one whose generated-code form another name already has."""
        name = sanitise(raw)
        candidate, k = name, 1
        while candidate in self.used or ident_name(candidate) in self.used:
            k += 1
            candidate = f"{name}_{k}"
        self.used.update((candidate, ident_name(candidate)))
        return candidate

    def out(self, k: int = 0) -> str:
        return self.node.output[k] if len(self.node.output) > k else ""


def sanitise(raw: str) -> str:
    """Letters, digits and '_' only (nngraph reserves '/' and '.'; generated code '_' for
    the rest), never empty."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw or "").strip("_")
    return name or "layer"


def _node_name(node) -> str:
    return node.name or (node.output[0] if node.output and node.output[0] else
                         node.op_type.lower())


