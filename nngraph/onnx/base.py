"""What every module of the ONNX export shares: its error and its opset bounds. A leaf
module (it imports nothing of nngraph.onnx), so that the package's modules import it and
not the package itself, whose functions import them: no import cycle."""
from __future__ import annotations

from ..errors import NNGraphError

DEFAULT_OPSET = 18
"""The opset written when none is asked for: recent, and run by every ONNX Runtime since 1.14."""

MIN_OPSET = 13
"""The oldest opset the converters' node forms exist in (Softmax over one axis, Squeeze and
Clip with their bounds as inputs)."""

MISSING = ("ONNX export needs the onnx package, which is not installed: "
           "pip install nngraph[onnx]")


class ExportError(NNGraphError):
    """A model that cannot be written as ONNX: an op with no ONNX form, a bad opset or dtype,
    a float64 network that ONNX Runtime could not run, or a file that cannot be written."""


MISSING_IMPORT = ("ONNX import needs the onnx package, which is not installed: "
                  "pip install nngraph[onnx]")


class OnnxImportError(NNGraphError):
    """An ONNX model that cannot be imported: an operator or attribute nngraph's ops cannot
    express, or a file that cannot be read. `op_type`, `node` and `opset` name what was
    refused (None for a file error), so that tools can tabulate the reasons."""

    def __init__(self, message: str, op_type=None, node=None, opset=None, reason=None):
        super().__init__(message)
        self.op_type, self.node, self.opset, self.reason = op_type, node, opset, reason
