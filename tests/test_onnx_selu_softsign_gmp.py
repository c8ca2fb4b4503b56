"""ONNX forms of selu, softsign and global_maxpool2d (nngraph/onnx/activations.py,
layers.py, import_extra.py): export to Selu (alpha, gamma), Softsign and GlobalMaxPool +
Flatten predicts in ONNX Runtime what nngraph does; Selu, Softsign and GlobalMaxPool graphs
import and predict what ONNX Runtime does, the activations fused into the layer before them;
what nngraph cannot compute is refused; and a network of all three survives export then
import."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

import nngraph                                                  # noqa: E402
from nngraph.onnx import OnnxImportError, onnx_to_spec          # noqa: E402
from test_onnx_export import _assert_same_predictions, _exported, _randomise   # noqa: E402
from test_onnx_import import _against_ort, _feeds, _fin, _model  # noqa: E402

SPEC = """
nngraph: 1
name: selu_softsign_gmp_onnx
inputs: {img: {shape: [3, 5, 4]}, vec: {shape: [5]}}
layers:
  - {op: conv2d, name: conv, in: img, filters: 4, kernel: 3, padding: same,
     activation: selu}
  - {op: global_maxpool2d, name: pool}
  - {op: softsign, name: squash}
  - {op: dense, name: hidden, in: vec, units: 6, activation: softsign}
  - {op: dense, name: scaled, units: 3, activation: {selu: {alpha: 0.5, gamma: 2.0}}}
  - {op: selu, name: act, in: hidden}
outputs: [squash, scaled, act]
"""


def _model_of_spec():
    return _randomise(nngraph.compile(SPEC, backend="reference", seed=0))


def test_export_writes_selu_softsign_and_global_max_pool(tmp_path):
    model = _model_of_spec()
    proto = _exported(model, tmp_path)
    ops = {n.name: n for n in proto.graph.node}
    assert ops["conv:selu"].op_type == "Selu" and ops["squash"].op_type == "Softsign"
    assert ops["pool"].op_type == "GlobalMaxPool" and ops["pool:flatten"].op_type == "Flatten"
    assert ops["hidden:softsign"].op_type == "Softsign"
    attrs = {a.name: helper.get_attribute_value(a) for a in ops["scaled:selu"].attribute}
    assert attrs == pytest.approx({"alpha": 0.5, "gamma": 2.0})
    attrs = {a.name: helper.get_attribute_value(a) for a in ops["act"].attribute}
    assert attrs == pytest.approx({"alpha": 1.6732632, "gamma": 1.0507010})
    _assert_same_predictions(model, proto)


def test_export_then_import_predicts_the_same(tmp_path):
    model = _model_of_spec()
    path = model.export_onnx(str(tmp_path / "m.onnx"))
    back = nngraph.import_onnx(path, backend="reference")
    spec = onnx_to_spec(path)[0]
    layers = {d["name"]: d for d in spec["layers"]}
    assert layers["conv"]["activation"] == "selu" and layers["pool"]["op"] == "global_maxpool2d"
    assert layers["hidden"]["activation"] == "softsign"
    assert layers["scaled"]["activation"] == {"selu": {"alpha": 0.5, "gamma": 2.0}}
    rng = np.random.default_rng(1)
    feeds = {k: rng.normal(0, 2, (3,) + tuple(model.net.inputs[k].shape)).astype(np.float32)
             for k in model.net.feature_inputs}
    want, got = model.predict(feeds), back.predict(feeds)
    for mine, theirs in zip(model.net.outputs, back.net.outputs, strict=True):
        scale = float(np.abs(want[mine]).max())
        np.testing.assert_allclose(got[theirs], want[mine], rtol=0, atol=1e-5 * scale)


def _unary(op, shape=(4, 3, 5), out=None, **attrs):
    return _model([helper.make_node(op, ["x"], ["y"], name="node", **attrs)],
                  [_fin("x", *shape)], [_fin("y", *(out or shape))])


@pytest.mark.parametrize("attrs", [{}, dict(alpha=0.5, gamma=2.0), dict(alpha=0.0)])
def test_selu_imports_and_predicts_what_onnx_runtime_does(attrs, tmp_path):
    proto = _unary("Selu", **attrs)
    _against_ort(tmp_path, proto, _feeds(proto))
    (layer,) = onnx_to_spec(proto)[0]["layers"]
    assert layer["op"] == "selu"
    assert {k: layer[k] for k in attrs} == pytest.approx(attrs)
    assert attrs or ("alpha" not in layer and "gamma" not in layer)    # defaults left out


def test_softsign_imports_and_predicts_what_onnx_runtime_does(tmp_path):
    proto = _unary("Softsign", shape=(7,))
    _against_ort(tmp_path, proto, _feeds(proto))
    assert onnx_to_spec(proto)[0]["layers"][0]["op"] == "softsign"


def test_global_max_pool_as_output_keeps_onnxs_shape(tmp_path):
    proto = _unary("GlobalMaxPool", out=(4, 1, 1))
    model = _against_ort(tmp_path, proto, _feeds(proto))
    assert model.predict(_feeds(proto)).shape == (3, 4, 1, 1)


def test_global_max_pool_then_flatten_then_gemm_with_fused_activations(tmp_path):
    w = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    proto = _model([helper.make_node("GlobalMaxPool", ["x"], ["p"], name="pool"),
                    helper.make_node("Flatten", ["p"], ["f"], name="flat"),
                    helper.make_node("Gemm", ["f", "w"], ["g"], name="fc", transB=1),
                    helper.make_node("Selu", ["g"], ["s"], name="selu", alpha=0.9),
                    helper.make_node("Softsign", ["s"], ["y"], name="soft")],
                   [_fin("x", 4, 3, 5)], [_fin("y", 3)], [("w", w)])
    _against_ort(tmp_path, proto, _feeds(proto))
    layers = onnx_to_spec(proto)[0]["layers"]
    assert [d["op"] for d in layers] == ["global_maxpool2d", "dense", "softsign"]
    assert layers[1]["activation"] == {"selu": {"alpha": pytest.approx(0.9)}}


@pytest.mark.parametrize("proto,why", [
    (lambda: _unary("Selu", alpha=-1.0), "alpha >= 0"),
    (lambda: _unary("Selu", gamma=0.0), "gamma > 0"),
    (lambda: _unary("GlobalMaxPool", shape=(4, 5), out=(4, 1)), "rank other than 2-D"),
], ids=["negative_alpha", "zero_gamma", "1d_pool"])
def test_what_nngraph_cannot_compute_is_refused(proto, why):
    with pytest.raises(OnnxImportError, match=why):
        onnx_to_spec(proto())
