"""ONNX forms of channel_shuffle, pad2d and avgpool2d's count_include_pad: false
(nngraph/onnx/layers.py, import_spatial.py): export writes Reshape/Transpose/Reshape, Pad
and AveragePool(count_include_pad=0) and predicts what nngraph does in ONNX Runtime; Pad
graphs (three modes, pads as attributes or inputs, axes), ShuffleNet's channel shuffle
pattern and pools with asymmetric pads import and predict what ONNX Runtime does (within
1e-5 of the largest output); what nngraph cannot compute is refused."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

import nngraph                                                  # noqa: E402
from nngraph.onnx import OnnxImportError, onnx_to_spec          # noqa: E402
from test_onnx_export import _assert_same_predictions, _exported, _randomise   # noqa: E402
from test_onnx_import import (_against_ort, _feeds, _fin, _model,  # noqa: E402
                              _same_outputs)

SPEC = """
nngraph: 1
name: shuffle_pad_onnx
inputs: {img: {shape: [4, 6, 5]}, sig: {shape: [6, 7]}}
layers:
  - {op: conv2d, name: conv, in: img, filters: 6, kernel: 3, padding: same}
  - {op: channel_shuffle, name: shuffle, groups: 3}
  - {op: pad2d, name: zeros, padding: [1, 0, 2, 1]}
  - {op: pad2d, name: mirror, padding: [2, 1], mode: reflect}
  - {op: pad2d, name: edge, padding: 1, mode: edge}
  - {op: pad2d, name: low, padding: [0, 1, 0, 1], value: -.inf}
  - {op: maxpool2d, name: pool, size: 2}
  - {op: pad2d, name: crop, padding: [-1, 0, 1, -2], value: 0.5}
  - {op: avgpool2d, name: avg, in: mirror, size: 3, stride: 2, padding: 1,
     count_include_pad: false}
  - {op: channel_shuffle, name: shuffle1d, in: sig, groups: 2}
outputs: [crop, avg, edge, shuffle1d]
"""


def _model_of_spec():
    return _randomise(nngraph.compile(SPEC, backend="reference", seed=0))


def test_export_writes_reshape_transpose_pad_and_predicts_like_nngraph(tmp_path):
    model = _model_of_spec()
    proto = _exported(model, tmp_path)
    ops = {n.name: n for n in proto.graph.node}
    assert ops["shuffle"].op_type == "Transpose" and ops["zeros"].op_type == "Pad"
    assert ops["shuffle:reshape_split"].op_type == ops["shuffle:reshape"].op_type == "Reshape"
    modes = {k: helper.get_attribute_value(ops[k].attribute[0]) for k in ("mirror", "edge")}
    assert modes == {"mirror": b"reflect", "edge": b"edge"}
    avg = {a.name: helper.get_attribute_value(a) for a in ops["avg"].attribute}
    assert avg["count_include_pad"] == 0
    _assert_same_predictions(model, proto)


def test_export_then_import_predicts_the_same(tmp_path):
    model = _model_of_spec()
    path = model.export_onnx(str(tmp_path / "m.onnx"))
    back = nngraph.import_onnx(path, backend="reference")
    ops = [back.net.node(n)["op"].name for n in back.net.layers()]
    assert ops.count("channel_shuffle") == 2 and ops.count("pad2d") == 5
    assert "reshape" not in ops                       # the shuffle's reshapes add nothing
    _same_outputs(model, back)


def _ints(*v):
    return np.asarray(v, np.int64)


def _pad_graph(pads, mode="constant", value=None, opset=17, axes=None, shape=(2, 4, 5)):
    """Pad of an (N, *shape) input; pads are full-rank unless `axes` names the axes."""
    inputs, inits, attrs = ["x"], [], {"mode": mode}
    if opset < 11:
        attrs.update(pads=list(pads), **({} if value is None else {"value": value}))
    else:
        inputs.append("pads")
        inits.append(("pads", _ints(*pads)))
        if value is not None or axes is not None:
            inputs.append("value" if value is not None else "")
            if value is not None:
                inits.append(("value", np.asarray(value, np.float32)))
        if axes is not None:
            inputs.append("axes")
            inits.append(("axes", _ints(*axes)))
    return _model([helper.make_node("Pad", inputs, ["y"], name="pad", **attrs)],
                  [_fin("x", *shape)], [helper.make_tensor_value_info("y", 1, None)],
                  inits, opset=opset)


@pytest.mark.parametrize("kw", [
    dict(pads=[0, 0, 1, 2, 0, 0, 2, 0]),
    dict(pads=[0, 0, 1, 2, 0, 0, 2, 0], value=-1.5),
    dict(pads=[0, 0, 2, 1, 0, 0, 1, 3], mode="reflect"),
    dict(pads=[0, 0, 3, 0, 0, 0, 1, 2], mode="edge"),
    dict(pads=[0, 0, -1, 1, 0, 0, 2, -2], value=0.5),
    dict(pads=[0, 0, 1, 1, 0, 0, 0, 2], mode="reflect", opset=10),
    dict(pads=[0, 0, 1, 0, 0, 0, 0, 1], value=2.0, opset=10),
    dict(pads=[2, 1, 1, 0], mode="edge", axes=[-1, 2], opset=18),
], ids=["zeros", "constant", "reflect", "edge", "crop", "reflect_attr", "value_attr", "axes"])
def test_pad_imports_and_predicts_what_onnx_runtime_does(kw, tmp_path):
    proto = _pad_graph(**kw)
    model = _against_ort(tmp_path, proto, _feeds(proto))
    (layer,) = onnx_to_spec(proto)[0]["layers"]
    assert layer["op"] == "pad2d" and layer["mode"] == kw.get("mode", "constant")


def _shuffle_graph(groups=2, shape=(6, 3, 4), perm=(0, 2, 1, 3, 4)):
    c, rest = shape[0], list(shape[1:])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Reshape", ["c", "split"], ["g"], name="split"),
             helper.make_node("Transpose", ["g"], ["t"], name="shuffle", perm=list(perm)),
             helper.make_node("Reshape", ["t", "back"], ["s"], name="back"),
             helper.make_node("Relu", ["s"], ["y"], name="relu")]
    w = np.random.default_rng(3).normal(0, 0.5, (c, c) + (1,) * len(rest)).astype(np.float32)
    inits = [("w", w), ("split", _ints(-1, groups, c // groups, *rest)),
             ("back", _ints(0, c, *rest))]
    return _model(nodes, [_fin("x", *shape)], [_fin("y", *shape)], inits)


@pytest.mark.parametrize("groups,shape", [(2, (6, 3, 4)), (3, (6, 2, 2)), (4, (8, 5))])
def test_channel_shuffle_pattern_imports_as_one_layer(groups, shape, tmp_path):
    proto = _shuffle_graph(groups, shape, perm=[0, 2, 1] + list(range(3, len(shape) + 2)))
    _against_ort(tmp_path, proto, _feeds(proto))
    layers = onnx_to_spec(proto)[0]["layers"]
    conv, shuffle = layers                  # the Relu is the shuffle's activation
    assert shuffle["op"] == "channel_shuffle" and shuffle["groups"] == groups
    assert shuffle.get("activation") == "relu"


def _pool_graph(op, pads, kernel=(3, 3), strides=(1, 1), shape=(3, 7, 7), **attrs):
    node = helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=list(kernel),
                            strides=list(strides), pads=list(pads), **attrs)
    return _model([node], [_fin("x", *shape)], [helper.make_tensor_value_info("y", 1, None)])


@pytest.mark.parametrize("op,pads,kw", [
    ("MaxPool", [0, 1, 2, 0], {}),
    ("MaxPool", [1, 0, 0, 1], dict(kernel=(2, 3), strides=(2, 2))),
    ("AveragePool", [0, 0, 1, 1], dict(kernel=(7, 7))),                 # GoogLeNet's
    ("AveragePool", [0, 1, 2, 0], dict(strides=(2, 1))),
    ("AveragePool", [2, 1, 0, 2], dict(count_include_pad=1, strides=(2, 2))),
    ("AveragePool", [1, 1, 1, 1], dict(strides=(2, 2))),                # ShuffleNet's
    ("AveragePool", [1, 1, 1, 1], dict(count_include_pad=1)),
], ids=["max", "max_strided", "avg_googlenet", "avg_exclude", "avg_include", "avg_symmetric",
        "avg_symmetric_include"])
def test_pools_with_asymmetric_pads_predict_what_onnx_runtime_does(op, pads, kw, tmp_path):
    proto = _pool_graph(op, pads, **kw)
    _against_ort(tmp_path, proto, _feeds(proto))
    ops = [d["op"] for d in onnx_to_spec(proto)[0]["layers"]]
    assert set(ops) <= {"pad2d", "maxpool2d", "avgpool2d"}


@pytest.mark.parametrize("proto,why", [
    (lambda: _pad_graph([0, 1, 0, 0, 0, 0, 0, 0]), "channel axis"),
    (lambda: _pad_graph([0, 1, 0, 1], shape=(5,)), "2-D tensor"),
    (lambda: _pad_graph([0, 0, 1, 1, 0, 0, 1, 1], mode="wrap", opset=19), "mode wrap"),
    (lambda: _pad_graph([0, 0, -1, 1, 0, 0, 1, 1], mode="edge"), "negative pads"),
    (lambda: _shuffle_graph(perm=(0, 1, 2, 4, 3)), "no transpose layer"),
    (lambda: _pool_graph("AveragePool", [0, 0, 1, 1], strides=(2, 2)), "stride does not"),
], ids=["channels", "rank", "wrap", "negative_edge", "other_perm", "stride"])
def test_what_nngraph_cannot_compute_is_refused(proto, why):
    with pytest.raises(OnnxImportError, match=why):
        onnx_to_spec(proto())
