"""ONNX export: a model's inference graph as an ONNX file that ONNX Runtime (or any ONNX
consumer) runs with the model's predictions.

    >>> model = nngraph.compile("specs/lenet5.yaml", backend="reference")
    >>> model.export_onnx("lenet5.onnx")                  # opset 18 unless told otherwise
    'lenet5.onnx'

What is exported is what `predict` computes: the network's feature inputs (named as in the
spec, with a symbolic batch dimension "batch") and its outputs, never the losses or labels;
dropout and noise are identities, batch normalization uses its running statistics. Every ONNX
node carries its nngraph layer's name, and every initializer its parameter's ('c1.W').

This package imports `onnx` only when something is exported, so nngraph runs without it
(`pip install nngraph[onnx]` adds it). Its modules: `builder.py` (the one place that makes
protobuf objects, through onnx.helper), `export.py` (the walk over the network, dtypes,
opsets, checking and writing), and one file of converters per op family (`layers.py`,
`activations.py`, `recurrent.py`) registered by op name in `registry.py`; `base.py` holds
the errors and the opset bounds.

Import, the other way (nngraph.import_onnx, `nngraph import`): `fold.py` (static shapes and
constant folding), `import_graph.py` (the walk, names, activation fusion, weights), and the
converters of ONNX operators in `import_ops.py`, `import_shapes.py`,
`import_channelwise.py` (LRN, PRelu) and `import_recurrent.py`.
"""
from __future__ import annotations

from .base import (DEFAULT_OPSET, MIN_OPSET, MISSING, MISSING_IMPORT, ExportError,
                   OnnxImportError)

__all__ = ["ExportError", "export_onnx", "to_onnx", "DEFAULT_OPSET", "MIN_OPSET",
           "OnnxImportError", "onnx_to_spec"]


def _require_onnx():
    try:
        import onnx                                   # noqa: F401
    except ImportError:
        raise ExportError(MISSING) from None


def to_onnx(model, opset: int | None = None, dtype: str | None = None):
    """The model's inference graph as an onnx.ModelProto, checked by onnx.checker (full
    check). `opset`: default DEFAULT_OPSET; `dtype`: 'float32' or 'float64', default the
    model's. Raises ExportError."""
    _require_onnx()
    from .export import build
    return build(model, opset, dtype)


def export_onnx(model, path, opset: int | None = None, dtype: str | None = None) -> str:
    """Write `model`'s inference graph to `path` (replaced atomically); returns the path.
    See to_onnx for opset and dtype. Raises ExportError."""
    _require_onnx()
    from .export import build, write
    return write(build(model, opset, dtype), path)


def onnx_to_spec(source) -> tuple:
    """(spec dict, {layer: {param: array}}, {layer: {state: array}}) of an ONNX file (a path)
    or onnx.ModelProto: the spec nngraph.load reads and the weights and batchnorm statistics
    to set into the model compiled from it (nngraph.import_onnx does both). Raises
    OnnxImportError for an operator or attribute nngraph's ops cannot express."""
    try:
        import onnx                                   # noqa: F401
    except ImportError:
        raise OnnxImportError(MISSING_IMPORT) from None
    from .import_graph import read, to_spec
    if isinstance(source, onnx.ModelProto):
        return to_spec(source, "<onnx model>")
    return to_spec(read(source), str(source))
