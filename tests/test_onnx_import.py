"""ONNX import (nngraph/onnx/import_*.py, nngraph.import_onnx, `nngraph import`): every spec
in specs/ survives export then import with its predictions and layer names; small graphs
built with onnx.helper, one per supported operator and folding chain, predict what ONNX
Runtime does; unsupported operators are one clear error; and the conformance cases of the
onnx package that tools/onnx_conformance.py found passing still pass."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import nngraph                                      # noqa: E402
from nngraph.cli import main                        # noqa: E402
from nngraph.cli_tools import random_batch          # noqa: E402
from test_onnx_export import _deterministic         # noqa: E402
from nngraph.onnx import OnnxImportError, onnx_to_spec   # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.json"))
PASSING = ROOT / "tests" / "onnx_conformance_passing.txt"
TOLERANCE = 1e-5


def _close(got, want, tol=TOLERANCE):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1e-12)
    assert float(np.abs(got - want).max()) <= tol * scale


def _randomise(model, rng):
    for v in model.params.values():
        v[...] = rng.normal(0.0, 0.5, v.shape)
    for layer in model.state.values():
        for k, v in layer.items():
            v[...] = rng.uniform(0.5, 2.0, v.shape) if "var" in k else rng.normal(0, 1, v.shape)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_round_trip_of_every_spec(spec, tmp_path):
    # a VAE's sampling layer compared through its mean (see test_onnx_export._deterministic)
    model = nngraph.compile(_deterministic(spec), backend="reference")
    _randomise(model, np.random.default_rng(0))
    path = model.export_onnx(str(tmp_path / "m.onnx"))
    back = nngraph.import_onnx(path, backend="reference")
    batch = random_batch(model.net, 3, np.random.default_rng(1))
    # sampled inputs (a GAN's noise) are given, as the imported graph's ordinary inputs
    feeds = {k: v for k, v in batch.items()
             if k in model.net.feature_inputs + model.net.sampled_inputs}
    want, got = model.predict(feeds), back.predict(feeds)
    want = want if isinstance(want, dict) else {model.net.outputs[0]: want}
    got = got if isinstance(got, dict) else {back.net.outputs[0]: got}
    names = [_imported_name(model.net, o) for o in model.net.outputs]
    assert list(back.net.outputs) == names
    for name, w in want.items():
        _close(got[_imported_name(model.net, name)], w)
    layers = {n.replace("/", "_") for n in model.net.order()
              if model.net.node(n)["kind"] == "layer"}
    assert {n for n in back.net.order() if back.net.node(n)["kind"] == "layer"} <= layers


def _imported_name(net, output: str) -> str:
    """The name an output comes back with: an activation layer that alone reads a layer
    becomes that layer's activation (losses are not exported), so a VAE's `decoded` (a sigmoid of `logits`) comes back
    as `logits` with a sigmoid activation."""
    d = net.node(output)
    src = d["inputs"][0] if d["inputs"] else None
    if d["op"].kind == "activation" and src in net.graph and net.node(src)["kind"] == "layer" \
            and net.node(src)["activation"] is None \
            and [u for u in net.graph.successors(src) if net.node(u)["kind"] != "loss"] \
            == [output]:
        output = src
    return output.replace("/", "_")


# ---------------------------------------------------------------- hand-built graphs
def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _fin(name, *shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, ["N", *shape])


def _against_ort(tmp_path, proto, feeds, tol=1e-5):
    path = tmp_path / "g.onnx"
    onnx.save(proto, str(path))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, feeds)
    model = nngraph.import_onnx(str(path), backend="reference")
    got = model.predict(dict(zip(model.net.inputs, feeds.values())))
    got = [got[o] for o in model.net.outputs] if isinstance(got, dict) else [got]
    for g, w in zip(got, want):
        _close(g, w, tol)
    return model


def _feeds(proto, seed=0):
    """A batch of 3 for every input of a hand-built graph."""
    rng = np.random.default_rng(seed)
    return {v.name: rng.normal(0, 2, [3] + [d.dim_value for d in
                                            v.type.tensor_type.shape.dim[1:]]).astype(np.float32)
            for v in proto.graph.input}


def _same_outputs(model, back):
    """An exported-then-imported `back` predicts what `model` does, output by output."""
    rng = np.random.default_rng(1)
    feeds = {k: rng.normal(0, 2, (3,) + tuple(model.net.inputs[k].shape)).astype(np.float32)
             for k in model.net.feature_inputs}
    want, got = model.predict(feeds), back.predict(feeds)
    for mine, theirs in zip(model.net.outputs, back.net.outputs, strict=True):
        np.testing.assert_allclose(got[theirs], want[mine], rtol=1e-5, atol=1e-6)


R = np.random.default_rng(0)


def _w(*shape):
    return R.normal(0, 0.5, shape).astype(np.float32)


def _conv_graph(size=7, **attrs):
    return _model([helper.make_node("Conv", ["x", "W", "b"], ["c"], name="conv", **attrs),
                   helper.make_node("Relu", ["c"], ["y"], name="relu")],
                  [_fin("x", 2, size, size)], [_fin("y", None, None, None)],
                  [("W", _w(3, 2, 3, 3)), ("b", _w(3))])


CASES = {
    "conv_explicit": lambda: _conv_graph(pads=[1, 1, 1, 1], strides=[2, 2]),
    "conv_same_asym": lambda: _conv_graph(8, pads=[0, 0, 1, 1], strides=[2, 2]),
    "conv_auto_pad": lambda: _conv_graph(auto_pad="SAME_UPPER", strides=[2, 2]),
    "pools_bn_gap": lambda: _model([
        helper.make_node("BatchNormalization", ["x", "g", "be", "m", "v"], ["b"], name="bn"),
        helper.make_node("MaxPool", ["b"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[2, 2], pads=[1, 1, 1, 1],
                         count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["a"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["y"])],
        [_fin("x", 2, 8, 8)], [_fin("y", None)],
        [("g", _w(2)), ("be", _w(2)), ("m", _w(2)), ("v", np.abs(_w(2)) + 0.5)]),
    "gemm_matmul_add_mul": lambda: _model([
        helper.make_node("Gemm", ["x", "W", "c"], ["h"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Sigmoid", ["h"], ["s"]),
        helper.make_node("MatMul", ["s", "W2"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["a"]),
        helper.make_node("Mul", ["a", "k"], ["y"])],
        [_fin("x", 4)], [_fin("y", 3)],
        [("W", _w(5, 4)), ("c", _w(5)), ("W2", _w(5, 3)), ("b2", _w(3)), ("k", _w(3))]),
    "shape_chain_concat_softmax": lambda: _model([
        helper.make_node("Conv", ["x", "W"], ["c1"]),
        helper.make_node("Conv", ["x", "W"], ["c2"]),
        helper.make_node("Concat", ["c1", "c2"], ["cat"], axis=1),
        helper.make_node("Shape", ["cat"], ["sh"]),
        helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["cat", "target"], ["flat"]),
        helper.make_node("Identity", ["flat"], ["f"]),
        helper.make_node("Dropout", ["f"], ["d"]),
        helper.make_node("LogSoftmax", ["d"], ["y"], axis=-1)],
        [_fin("x", 1, 4, 4)], [_fin("y", None)],
        [("W", _w(2, 1, 3, 3)), ("zero", np.array(0, np.int64)),
         ("zero1", np.array([0], np.int64)), ("minus1", np.array([-1], np.int64))]),
    "constant_of_shape_sum_activations": lambda: _model([
        helper.make_node("Constant", [], ["shp"], value=numpy_helper.from_array(
            np.array([3, 4], np.int64))),
        helper.make_node("ConstantOfShape", ["shp"], ["W"], value=numpy_helper.from_array(
            np.array([0.25], np.float32))),
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node("Elu", ["m"], ["e"], alpha=0.5),
        helper.make_node("LeakyRelu", ["m"], ["l"], alpha=0.2),
        helper.make_node("Softplus", ["m"], ["s"]),
        helper.make_node("Tanh", ["m"], ["t"]),
        helper.make_node("Sum", ["e", "l", "s"], ["sum"]),
        helper.make_node("Mul", ["sum", "t"], ["y"])],
        [_fin("x", 3)], [_fin("y", 4)]),
    "resize_conv_transpose": lambda: _model([
        helper.make_node("Resize", ["x", "", "sc"], ["r"], mode="nearest"),
        helper.make_node("ConvTranspose", ["r", "W", "b"], ["y"], strides=[2, 2],
                         pads=[1, 1, 1, 1], output_padding=[1, 1])],
        [_fin("x", 2, 3, 3)], [_fin("y", None, None, None)],
        [("sc", np.array([1, 1, 2, 2], np.float32)), ("W", _w(2, 3, 3, 3)), ("b", _w(3))]),
    "embedding_lstm": lambda: _model([
        helper.make_node("Gather", ["E", "tok"], ["e"], axis=0),
        helper.make_node("Transpose", ["e"], ["tm"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["tm", "W", "R", "B"], ["", "h"], hidden_size=3),
        helper.make_node("Squeeze", ["h", "ax"], ["y"])],
        [_fin("tok", 5, elem=TensorProto.INT64)], [_fin("y", 3)],
        [("E", _w(7, 4)), ("W", _w(1, 12, 4)), ("R", _w(1, 12, 3)), ("B", _w(1, 24)),
         ("ax", np.array([0], np.int64))]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_built_graph_predicts_what_onnx_runtime_does(case, tmp_path):
    proto = CASES[case]()
    feeds = {}
    for v in proto.graph.input:
        dims = [3] + [d.dim_value for d in v.type.tensor_type.shape.dim[1:]]
        if v.type.tensor_type.elem_type == TensorProto.INT64:
            feeds[v.name] = R.integers(0, 7, dims).astype(np.int64)
        else:
            feeds[v.name] = R.normal(0, 1, dims).astype(np.float32)
    _against_ort(tmp_path, proto, feeds)


def test_activation_fuses_into_the_layer_and_bias_folds(tmp_path):
    spec = onnx_to_spec(CASES["conv_explicit"]())[0]
    assert [d["name"] for d in spec["layers"]] == ["conv"]
    assert spec["layers"][0]["activation"] == "relu"
    spec = onnx_to_spec(CASES["gemm_matmul_add_mul"]())[0]
    assert [d["op"] for d in spec["layers"]] == ["dense", "dense"]


def test_names_are_sanitised_and_unique():
    proto = _model([helper.make_node("Relu", ["in put.0"], ["a"], name="blk/relu.1"),
                    helper.make_node("Relu", ["a"], ["b"], name="blk/relu.1"),
                    helper.make_node("Tanh", ["b"], ["y"], name="")],
                   [_fin("in put.0", 3)], [_fin("y", 3)])
    spec = onnx_to_spec(proto)[0]
    assert list(spec["inputs"]) == ["in_put_0"]
    names = [d["name"] for d in spec["layers"]]
    assert names == ["blk_relu_1", "blk_relu_1_2", "y"]
    nngraph.load(spec)


def _unsupported(tmp_path):
    """A grouped 1-D Conv: grouped conv2d imports, but nngraph's conv1d is not grouped."""
    proto = _model([helper.make_node("Conv", ["x", "W"], ["y"], name="grouped", group=2)],
                   [_fin("x", 2, 5)], [_fin("y", None, None)],
                   [("W", _w(2, 1, 3))], opset=13)
    path = str(tmp_path / "bad.onnx")
    onnx.save(proto, path)
    return path


def test_unsupported_operator_is_one_clear_error(tmp_path, capsys):
    path = _unsupported(tmp_path)
    with pytest.raises(OnnxImportError) as e:
        nngraph.import_onnx(path, backend="reference")
    assert (e.value.op_type, e.value.node, e.value.opset) == ("Conv", "grouped", 13)
    assert "group=2" in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, nngraph.NNGraphError)
    capsys.readouterr()
    assert main(["import", path, "-o", str(tmp_path / "bad.nnz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot import") and "Conv" in err
    proto = _model([helper.make_node("Hardmax", ["x"], ["y"])], [_fin("x", 3)],
                   [_fin("y", 3)])
    with pytest.raises(OnnxImportError, match="operator Hardmax"):
        onnx_to_spec(proto)


def test_cli_writes_model_and_spec_that_check_accepts(tmp_path, capsys):
    model = nngraph.compile(ROOT / "specs" / "lenet5.yaml", backend="reference")
    path = model.export_onnx(str(tmp_path / "lenet5.onnx"))
    nnz, yml = str(tmp_path / "l.nnz"), str(tmp_path / "l.yaml")
    assert main(["import", path, "-o", nnz, "--spec", yml]) == 0
    assert main(["check", yml]) == 0
    assert "ok (lenet5" in capsys.readouterr().out
    back = nngraph.load_model(nnz, backend="reference")
    x = np.random.default_rng(0).normal(size=(2, 1, 28, 28)).astype(np.float32)
    _close(back.predict({"image": x}), model.predict({"image": x}))


# ---------------------------------------------------------------- the onnx package's cases
def _tool():
    spec = importlib.util.spec_from_file_location("onnx_conformance",
                                                  ROOT / "tools" / "onnx_conformance.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PASSING_CASES = PASSING.read_text().split() if PASSING.exists() else []


@pytest.mark.parametrize("case", PASSING_CASES)
def test_conformance_case_still_passes(case):
    tool = _tool()
    paths = dict(tool.cases())
    if case not in paths:
        pytest.skip("not in this onnx installation")
    if case.startswith("light/") or os.path.getsize(paths[case]) > 2_000_000:
        pytest.skip("a large model: run tools/onnx_conformance.py")
    assert tool.run_case(paths[case]) == "pass"
