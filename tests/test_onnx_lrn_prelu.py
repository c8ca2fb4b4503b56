"""ONNX forms of lrn and prelu (nngraph/onnx/layers.py, import_channelwise.py): export to
LRN and PRelu (a [C, 1, ...] slope) predicts what nngraph does in ONNX Runtime; LRN and
PRelu graphs (per-channel and scalar slopes) import and predict what ONNX Runtime does; what
nngraph cannot compute is refused; and a network of both survives export then import."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper, numpy_helper  # noqa: E402

import nngraph                                                  # noqa: E402
from nngraph.onnx import OnnxImportError, onnx_to_spec          # noqa: E402
from test_onnx_export import _assert_same_predictions, _exported, _randomise   # noqa: E402
from test_onnx_import import (_against_ort, _feeds, _fin, _model,  # noqa: E402
                              _same_outputs)

SPEC = """
nngraph: 1
name: lrn_prelu_onnx
inputs: {img: {shape: [3, 5, 4]}, sig: {shape: [6, 7]}, vec: {shape: [5]}}
layers:
  - {op: conv2d, name: conv, in: img, filters: 4, kernel: 3, padding: same}
  - {op: prelu, name: slope}
  - {op: lrn, name: norm, size: 3, alpha: 0.5, beta: 0.75, bias: 1.5}
  - {op: lrn, name: norm1d, in: sig, size: 5, alpha: 1.0}
  - {op: prelu, name: slope1d, in: norm1d}
  - {op: prelu, name: slope0, in: vec}
  - {op: lrn, name: norm0, in: slope0, size: 3, alpha: 2.0, beta: 0.5}
outputs: [norm, slope1d, norm0]
"""


def _model_of_spec():
    model = nngraph.compile(SPEC, backend="reference", seed=0)
    return _randomise(model)


def test_export_writes_lrn_and_prelu_with_broadcasting_slopes(tmp_path):
    model = _model_of_spec()
    proto = _exported(model, tmp_path)
    ops = {n.name: n for n in proto.graph.node}
    assert ops["slope"].op_type == "PRelu" and ops["norm"].op_type == "LRN"
    attrs = {a.name: helper.get_attribute_value(a) for a in ops["norm"].attribute}
    assert attrs["size"] == 3 and attrs["alpha"] == pytest.approx(0.5)
    assert attrs["beta"] == pytest.approx(0.75) and attrs["bias"] == pytest.approx(1.5)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    assert inits["slope.a"].shape == (4, 1, 1) and inits["slope1d.a"].shape == (6, 1)
    assert inits["slope0.a"].shape == (5,)
    np.testing.assert_array_equal(inits["slope.a"].reshape(-1), model.params["slope.a"])
    _assert_same_predictions(model, proto)


def test_export_then_import_predicts_the_same(tmp_path):
    model = _model_of_spec()
    path = model.export_onnx(str(tmp_path / "m.onnx"))
    back = nngraph.import_onnx(path, backend="reference")
    ops = {back.net.node(n)["op"].name for n in back.net.layers()}
    assert {"lrn", "prelu"} <= ops
    # outputs in order: a (C,) lrn comes back as the layers of its (N, C, C', 1) detour
    _same_outputs(model, back)


def _lrn_graph(**attrs):
    return _model([helper.make_node("LRN", ["x"], ["y"], name="lrn", **attrs)],
                  [_fin("x", 6, 4, 3)], [_fin("y", 6, 4, 3)])


def _prelu_graph(slope, shape=(4, 3, 3)):
    return _model([helper.make_node("PRelu", ["x", "s"], ["y"], name="prelu")],
                  [_fin("x", *shape)], [_fin("y", *shape)],
                  [("s", np.asarray(slope, np.float32))])


@pytest.mark.parametrize("attrs", [dict(size=3), dict(size=5, alpha=0.4, beta=0.9, bias=2.0),
                                   dict(size=1, alpha=1.0)])
def test_lrn_imports_and_predicts_what_onnx_runtime_does(attrs, tmp_path):
    proto = _lrn_graph(**attrs)
    model = _against_ort(tmp_path, proto, _feeds(proto))
    (layer,) = onnx_to_spec(proto)[0]["layers"]
    assert layer["op"] == "lrn" and layer["size"] == attrs["size"]
    assert model.net.node("lrn")["op"].name == "lrn"


@pytest.mark.parametrize("slope", [
    np.linspace(-0.5, 0.5, 4).reshape(4, 1, 1),     # per channel, export's form
    [0.3],                                          # a scalar: the same for every channel
    0.2,
    np.full((1, 1, 3), 0.1),                        # constant along the channels too
], ids=["per_channel", "one", "scalar", "broadcast"])
def test_prelu_imports_and_predicts_what_onnx_runtime_does(slope, tmp_path):
    proto = _prelu_graph(slope)
    model = _against_ort(tmp_path, proto, _feeds(proto))
    want = np.broadcast_to(np.asarray(slope, np.float32), (1, 4, 3, 3))[0, :, 0, 0]
    np.testing.assert_allclose(model.params["prelu.a"], want)
    assert model.params["prelu.a"].shape == (4,)


def test_prelu_of_flat_features_has_a_slope_per_feature(tmp_path):
    proto = _prelu_graph(np.linspace(0.1, 0.6, 6), shape=(6,))
    model = _against_ort(tmp_path, proto, _feeds(proto))
    assert model.params["prelu.a"].shape == (6,)


def test_prelu_of_opset_6_takes_a_vector_slope_per_channel():
    """PRelu-6 applied C slopes to axis 1; the same vector broadcasts from the last axis in
    PRelu-7 and later, where it is refused below."""
    proto = _model([helper.make_node("PRelu", ["x", "s"], ["y"], name="prelu")],
                   [_fin("x", 3, 4)], [_fin("y", 3, 4)],
                   [("s", np.array([0.1, 0.2, 0.3], np.float32))], opset=6)
    _, params, _ = onnx_to_spec(proto)
    np.testing.assert_allclose(params["prelu"]["a"], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("proto,why", [
    (lambda: _lrn_graph(size=4), "odd window"),
    (lambda: _prelu_graph(np.linspace(0, 1, 3)), "differs within a channel"),
    (lambda: _prelu_graph(np.ones((2, 1, 1))), "does not broadcast"),
    (lambda: _model([helper.make_node("PRelu", ["x", "s"], ["y"], name="p")],
                    [_fin("x", 4), _fin("s", 4)], [_fin("y", 4)]), "computed from data"),
], ids=["even_size", "slope_per_position", "bad_slope_shape", "data_slope"])
def test_what_nngraph_cannot_compute_is_refused(proto, why):
    with pytest.raises(OnnxImportError, match=why):
        onnx_to_spec(proto())
