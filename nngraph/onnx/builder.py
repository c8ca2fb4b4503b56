"""The nodes and initializers of one ONNX graph as they are collected, before onnx.helper
makes the graph of them. The converters call only this class, so that the protobuf side of
export (names, dtypes, attribute encoding) is in one place and the converters read as the
ONNX ops they write.

Names: ONNX requires every tensor to be written once and every initializer name to be unique;
`node` and `init` refuse a second use of a name, so a converter that clashed with another
layer's names fails here, as an ExportError naming the name, not as a checker message.
"""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from .base import ExportError


class Builder:
    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)          # what every float tensor of the graph holds
        self.nodes: list = []
        self.inits: list = []
        self.tensors: set = set()             # every tensor name written so far
        self.owner: dict = {}                 # node name -> (layer, op), for messages
        self.layer = None                     # the (layer, op) being converted now

    @property
    def elem_type(self) -> int:
        """The ONNX element type of the graph's floats (TensorProto.FLOAT or DOUBLE)."""
        return helper.np_dtype_to_tensor_dtype(self.dtype)

    def declare(self, name: str) -> None:
        """Reserve a tensor name (a graph input) so that nothing writes it."""
        self._claim(name)

    def node(self, op_type: str, inputs, outputs, name: str, **attrs):
        """Append one node of the layer being converted; `outputs` is a name or a list (''
        for an output not wanted). Returns what `outputs` was."""
        if name in self.owner:
            raise ExportError(f"ONNX export: the node name '{name}' is used twice; rename "
                              "the layer whose name it starts with")
        outs = [outputs] if isinstance(outputs, str) else list(outputs)
        for out in outs:
            if out:
                self._claim(out)
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        self.owner[name] = self.layer
        return outputs

    def init(self, name: str, array) -> str:
        """An initializer holding `array`: floats in the graph's dtype, integers as they are."""
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(self.dtype, copy=False)
        self._claim(name)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, name: str, values) -> str:
        """An int64 initializer (shapes, axes)."""
        return self.init(name, np.asarray(values, dtype=np.int64))

    def scalar(self, name: str, value: float) -> str:
        """A float scalar in the graph's dtype (clip bounds, thresholds)."""
        return self.init(name, np.asarray(value, dtype=self.dtype))

    def _claim(self, name: str) -> None:
        if name in self.tensors:
            raise ExportError(f"ONNX export: the tensor name '{name}' is used twice; rename "
                              "the layer whose name it starts with")
        self.tensors.add(name)
