"""The onnx wheel's light/ model-zoo networks, imported on the cpu backend, predict what ONNX
Runtime predicts from the same file, within 1e-4 of the largest output.

The files' own weights (ConstantOfShape nodes) are all 0.02, which makes the outputs nearly uniform and a
comparison of them weak: they are written out as initializers, each multiplied, element by element,
by a seeded factor in [0.5, 1.5] (signs, and so batchnorm's positive variances, are kept),
a final Softmax is cut off so that the logits are compared, and both sides run that file. Marked `zoo` (heavy: up to 575 MB of weights, ResNet-50 and
VGG-19 at 224x224); `pytest -m "not zoo"` leaves them out.
"""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import nngraph  # noqa: E402
from onnx import numpy_helper  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
NETWORKS = ["resnet50", "inception_v1", "inception_v2", "densenet121", "squeezenet",
            "shufflenet", "bvlc_alexnet", "zfnet512", "vgg19"]


def perturbed(name: str, tmp_path) -> str:
    proto = onnx.load(os.path.join(LIGHT, f"light_{name}.onnx"))
    rng = np.random.default_rng(0)
    inits = {t.name: t for t in proto.graph.initializer}
    for node in list(proto.graph.node):     # the weights: ConstantOfShape of a constant shape
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = numpy_helper.to_array(inits[node.input[0]])
            value = next((numpy_helper.to_array(a.t) for a in node.attribute
                          if a.name == "value"), np.zeros(1, np.float32))
            w = np.full(tuple(shape), value.reshape(-1)[0], value.dtype)
            proto.graph.initializer.append(numpy_helper.from_array(w, node.output[0]))
            proto.graph.input.append(onnx.helper.make_tensor_value_info(   # IR 3 lists
                node.output[0], onnx.TensorProto.FLOAT, [int(d) for d in shape]))
            proto.graph.node.remove(node)
    for t in proto.graph.initializer:
        w = numpy_helper.to_array(t)
        if w.dtype == np.float32 and w.size > 1:
            w = (w * rng.uniform(0.5, 1.5, w.shape)).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(w, t.name))
    last = proto.graph.node[-1]
    if last.op_type == "Softmax" and last.output[0] == proto.graph.output[0].name:
        # compare the logits: a softmax of 1,000 near-equal logits is 0.001 everywhere
        proto.graph.output[0].name = last.input[0]
        proto.graph.node.remove(last)
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(proto, path)
    return path


@pytest.mark.zoo
@pytest.mark.parametrize("name", NETWORKS)
def test_light_network_predicts_like_onnxruntime(name, tmp_path):
    if not os.path.exists(os.path.join(LIGHT, f"light_{name}.onnx")):
        pytest.skip("not in this onnx installation")
    path = perturbed(name, tmp_path)
    model = nngraph.import_onnx(path, backend="cpu")
    (input_name,) = model.net.feature_inputs
    shape = model.net.inputs[input_name].shape
    x = np.random.default_rng(1).normal(size=(1, *shape)).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    want = session.run(None, {feed: x})[0]
    got = model.predict({input_name: x})
    got = got[model.net.outputs[0]] if isinstance(got, dict) else got
    got = np.asarray(got).reshape(want.shape)
    scale = float(np.abs(want).max())
    assert scale > 0 and np.ptp(want) > 1e-3 * scale       # not a uniform output
    assert float(np.abs(got - want).max()) <= 1e-4 * scale
