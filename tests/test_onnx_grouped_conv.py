"""ONNX form of grouped conv2d (nngraph/onnx/layers.py, import_ops.py): export writes Conv's
`group` (and nothing new for ungrouped convs) and predicts in ONNX Runtime what nngraph does;
grouped and depthwise Conv graphs import as conv2d `groups` and predict what ONNX Runtime
does; a grouped 1-D Conv is refused (conv1d is not grouped)."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

import nngraph                                                  # noqa: E402
from nngraph.onnx import OnnxImportError, onnx_to_spec          # noqa: E402
from test_onnx_export import _assert_same_predictions, _exported, _randomise   # noqa: E402
from test_onnx_import import _against_ort, _fin, _model        # noqa: E402

SPEC = """
nngraph: 1
name: grouped_onnx
inputs: {img: {shape: [4, 7, 6]}}
layers:
  - {op: conv2d, name: towers, filters: 6, kernel: 3, groups: 2, padding: same}
  - {op: conv2d, name: depthwise, filters: 6, kernel: 3, groups: 6, stride: 2, dilation: 1}
  - {op: conv2d, name: plain, filters: 3, kernel: 1, use_bias: false}
outputs: [plain]
"""


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def test_export_writes_group_only_where_grouped(tmp_path):
    model = _randomise(nngraph.compile(SPEC, backend="reference", seed=0))
    proto = _exported(model, tmp_path)
    ops = {n.name: n for n in proto.graph.node}
    assert _attrs(ops["towers"])["group"] == 2 and _attrs(ops["depthwise"])["group"] == 6
    assert "group" not in _attrs(ops["plain"])
    _assert_same_predictions(model, proto)


def test_export_then_import_keeps_the_groups(tmp_path):
    model = _randomise(nngraph.compile(SPEC, backend="reference", seed=0))
    back = nngraph.import_onnx(model.export_onnx(str(tmp_path / "m.onnx")), backend="reference")
    assert back.params["towers.W"].shape == (6, 2, 3, 3)
    feeds = {"img": np.random.default_rng(1).normal(0, 2, (3, 4, 7, 6)).astype(np.float32)}
    np.testing.assert_allclose(back.predict(feeds), model.predict(feeds), rtol=1e-5, atol=1e-5)


def _conv_graph(c, f, group, size=(7, 7), bias=True, **attrs):
    rng = np.random.default_rng(0)
    k = attrs.get("kernel_shape", [3, 3])
    inits = [("w", rng.normal(0, 0.5, (f, c // group, *k)).astype(np.float32))]
    if bias:
        inits.append(("b", rng.normal(0, 0.5, f).astype(np.float32)))
    node = helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["y"], name="conv",
                            group=group, **attrs)
    return _model([node], [_fin("x", c, *size)], [_fin("y", f, None, None)], inits)


@pytest.mark.parametrize("c,f,group,attrs", [
    (4, 6, 2, dict(kernel_shape=[3, 3])),
    (6, 9, 3, dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 1, 1, 1])),
    (6, 6, 2, dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2])),
    (5, 5, 5, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),                      # depthwise
    (4, 8, 4, dict(kernel_shape=[1, 1])),                                         # multiplier 2
], ids=["two", "three_strided", "dilated_padded", "depthwise", "depthwise_x2"])
def test_grouped_conv_imports_and_predicts_what_onnx_runtime_does(c, f, group, attrs, tmp_path):
    proto = _conv_graph(c, f, group, **attrs)
    feeds = {"x": np.random.default_rng(2).normal(0, 2, (3, c, 7, 7)).astype(np.float32)}
    model = _against_ort(tmp_path, proto, feeds)
    (layer,) = onnx_to_spec(proto)[0]["layers"]
    assert layer["op"] == "conv2d" and layer["groups"] == group
    assert model.params["conv.W"].shape == (f, c // group, *attrs["kernel_shape"])


def test_ungrouped_conv_imports_without_groups():
    (layer,) = onnx_to_spec(_conv_graph(4, 6, 1, kernel_shape=[3, 3]))[0]["layers"]
    assert "groups" not in layer


def test_grouped_1d_conv_is_refused():
    rng = np.random.default_rng(0)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=2)
    proto = _model([node], [_fin("x", 4, 9)], [_fin("y", 4, 7)],
                   [("w", rng.normal(size=(4, 2, 3)).astype(np.float32))])
    with pytest.raises(OnnxImportError, match="conv1d is not grouped"):
        onnx_to_spec(proto)
