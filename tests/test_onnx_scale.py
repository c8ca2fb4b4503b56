"""ONNX forms of scale and the import of what the zoo's DenseNet, Inception v2 and SqueezeNet
need (nngraph/onnx/layers.py, import_ops.py, import_shapes.py): scale exports to Mul (+ Add)
by [C, 1, ...] constants and predicts what nngraph does in ONNX Runtime; a per-channel
constant Mul/Div/Add/Sub that folds into no layer before it imports as a scale layer (an
Add after it folding into its bias); a Softmax over axis 1 of (N, C, 1, 1), or over the
flattened axes from `axis` on before opset 13, imports through reshapes; all predicting what
ONNX Runtime does."""
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
name: scale_onnx
inputs: {img: {shape: [3, 5, 4]}, vec: {shape: [5]}}
layers:
  - {op: conv2d, name: conv, in: img, filters: 4, kernel: 3, padding: same}
  - {op: scale, name: affine, activation: relu}
  - {op: batchnorm, name: bn, in: img, use_bias: false}
  - {op: scale, name: bn_scale}
  - {op: concat, name: cat, in: [affine, bn_scale], axis: 0}
  - {op: scale, name: cat_scale, use_bias: false}
  - {op: scale, name: gain, in: vec}
outputs: [cat_scale, gain]
"""


def _model_of_spec():
    return _randomise(nngraph.compile(SPEC, backend="reference", seed=0))


def test_export_writes_mul_and_add_by_per_channel_constants(tmp_path):
    model = _model_of_spec()
    proto = _exported(model, tmp_path)
    ops = {n.name: n.op_type for n in proto.graph.node}
    assert ops["affine"] == "Mul" and ops["affine:bias"] == "Add"
    assert ops["cat_scale"] == "Mul" and "cat_scale:bias" not in ops
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    assert inits["affine.W"].shape == inits["affine.b"].shape == (4, 1, 1)
    assert inits["cat_scale.W"].shape == (7, 1, 1) and inits["gain.W"].shape == (5,)
    np.testing.assert_array_equal(inits["affine.W"].reshape(-1), model.params["affine.W"])
    _assert_same_predictions(model, proto)


def test_export_then_import_predicts_the_same(tmp_path):
    """After the convolution the scale folds into its weights; after a batchnorm, a concat
    or an input it is a scale layer again."""
    model = _model_of_spec()
    path = model.export_onnx(str(tmp_path / "m.onnx"))
    back = nngraph.import_onnx(path, backend="reference")
    ops = {n: back.net.node(n)["op"].name for n in back.net.layers()}
    assert "affine" not in ops and ops["conv"] == "conv2d"
    assert ops["bn_scale"] == ops["cat_scale"] == ops["gain"] == "scale"
    assert "cat_scale.b" not in back.params
    _same_outputs(model, back)


S = np.linspace(0.5, 2.0, 4, dtype=np.float32).reshape(4, 1, 1)
T = np.linspace(-1.0, 1.0, 4, dtype=np.float32).reshape(4, 1, 1)


def _free_standing(first, second, const_first=False):
    """Relu (nothing folds into it), then `first` by s and `second` by t (both per channel),
    then a global pool and a Softmax over axis 1 of (N, 4, 1, 1): two outputs."""
    ins = ["s", "r"] if const_first else ["r", "s"]
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node(first, ins, ["m"], name="mul")]
    last = "m"
    if second:
        nodes.append(helper.make_node(second, ["m", "t"], ["a"], name="add"))
        last = "a"
    nodes += [helper.make_node("GlobalAveragePool", [last], ["g"], name="pool"),
              helper.make_node("Softmax", ["g"], ["p"], name="softmax", axis=1)]
    return _model(nodes, [_fin("x", 4, 3, 2)], [_fin(last, 4, 3, 2), _fin("p", 4, 1, 1)],
                  [("s", S), ("t", T)])


@pytest.mark.parametrize("first,second,const_first", [
    ("Mul", "Add", False), ("Div", "Sub", False), ("Mul", None, True), ("Add", "Mul", False),
], ids=["mul_add", "div_sub", "const_mul", "add_mul"])
def test_free_standing_per_channel_constants_import_as_one_scale(first, second, const_first,
                                                                 tmp_path):
    proto = _free_standing(first, second, const_first)
    model = _against_ort(tmp_path, proto, _feeds(proto))
    layers = onnx_to_spec(proto)[0]["layers"]
    assert [d["op"] for d in layers].count("scale") == 1
    s, t = S.reshape(-1).astype(np.float64), T.reshape(-1).astype(np.float64)
    w, b = {("Mul", "Add"): (s, t), ("Div", "Sub"): (1 / s, -t), ("Mul", None): (s, None),
            ("Add", "Mul"): (t, s * t)}[first, second]
    np.testing.assert_allclose(model.params["mul.W"], w, rtol=1e-6)
    if b is None:
        assert "mul.b" not in model.params
    else:
        np.testing.assert_allclose(model.params["mul.b"], b, rtol=1e-6)


@pytest.mark.parametrize("op,axis,opset", [
    ("Softmax", 1, 11), ("LogSoftmax", 1, 11), ("Softmax", 2, 9), ("Softmax", -3, 11),
])
def test_softmax_before_opset_13_is_over_the_flattened_axes(op, axis, opset, tmp_path):
    proto = _model([helper.make_node(op, ["x"], ["y"], name="sm", axis=axis)],
                   [_fin("x", 3, 4, 5)], [_fin("y", 3, 4, 5)], opset=opset)
    model = _against_ort(tmp_path, proto, _feeds(proto))
    assert model.net.outputs and \
        {model.net.node(n)["op"].name for n in model.net.layers()} >= {"reshape"}


def test_softmax_of_trailing_ones_read_by_a_flatten_needs_no_reshape_back(tmp_path):
    nodes = [helper.make_node("Softmax", ["x"], ["p"], name="sm", axis=1),
             helper.make_node("Flatten", ["p"], ["y"], name="flat")]
    proto = _model(nodes, [_fin("x", 6, 1, 1)], [_fin("y", 6)])
    model = _against_ort(tmp_path, proto, _feeds(proto))
    (layer,) = onnx_to_spec(proto)[0]["layers"]      # the softmax is its activation
    assert layer["op"] == "reshape" and layer["activation"] == "softmax"
    assert layer["shape"] == [6] and model.net.outputs == [layer["name"]]


@pytest.mark.parametrize("proto,why", [
    (lambda: _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)],
                    [_fin("x", 3, 4, 5)], [_fin("y", 3, 4, 5)], opset=13), "axis=1"),
    (lambda: _model([helper.make_node("Softmax", ["x"], ["y"], axis=0)],
                    [_fin("x", 3)], [_fin("y", 3)], opset=11), "batch"),
    (lambda: _model([helper.make_node("Relu", ["x"], ["r"]),
                     helper.make_node("Mul", ["r", "s"], ["y"])],
                    [_fin("x", 3, 2)], [_fin("y", 3, 2)],
                    [("s", np.array([1.0, 2.0], np.float32))]), "differs within a channel"),
], ids=["opset13_axis1", "batch_axis", "per_position"])
def test_what_nngraph_cannot_compute_is_refused(proto, why):
    with pytest.raises(OnnxImportError, match=why):
        onnx_to_spec(proto())
