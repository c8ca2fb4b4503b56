"""ONNX Conv with pads nngraph's 'same' does not make, and MaxPool with ceil_mode=1 where it
adds a window: imported through pad2d, predicting what ONNX Runtime does."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import nngraph  # noqa: E402
from nngraph.onnx import OnnxImportError  # noqa: E402


def _model(node, shape, out_shape, inits=()):
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
        initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _agree(proto, shape, tmp_path):
    path = str(tmp_path / "m.onnx")
    onnx.save(proto, path)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    model = nngraph.import_onnx(path, backend="reference")
    got = model.predict({"x": x})
    got = got["y"] if isinstance(got, dict) else got
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    return model


def test_conv_with_asymmetric_pads_pads_first(tmp_path):
    w = np.random.default_rng(1).normal(size=(4, 3, 3, 2)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 2, 1, 0], strides=[2, 1])
    proto = _model(node, (3, 7, 6), (4, 3, 7), [numpy_helper.from_array(w, "w")])
    model = _agree(proto, (3, 7, 6), tmp_path)
    assert [d["op"] for d in model.net.spec["layers"]] == ["pad2d", "conv2d"]


@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [1, 0, 1, 1]])
def test_maxpool_ceil_mode_adds_the_last_window(tmp_path, pads):
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                            pads=pads, ceil_mode=1)
    h = 8
    out = [int(np.ceil((h + p + q - 3) / 2)) + 1 for p, q in ((pads[0], pads[2]),
                                                             (pads[1], pads[3]))]
    proto = _model(node, (2, h, h), (2, *out))
    model = _agree(proto, (2, h, h), tmp_path)
    assert model.net.spec["layers"][0]["op"] == "pad2d"


def test_average_pool_ceil_mode_that_adds_a_window_is_refused(tmp_path):
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                            ceil_mode=1)
    path = str(tmp_path / "a.onnx")
    onnx.save(_model(node, (2, 8, 8), (2, 4, 4)), path)
    with pytest.raises(OnnxImportError, match="ceil_mode=1 where it changes the output size"):
        nngraph.import_onnx(path, backend="reference")
