"""scale, Caffe's per-channel affine map (the ONNX zoo's DenseNet and Inception v2 need it):
its reference rule against PyTorch and finite differences in float64, its parameters and
shape rule, and a small network with it that trains on the cpu backend (its numpy rule runs
there as a reference group) exactly as on the reference backend."""
import numpy as np
import pytest

import nngraph
from op_harness import check_against_torch, check_gradients
from test_backends import matches_reference
from nngraph.backends.cpu import lower
from nngraph.ops import REGISTRY, RunContext, ShapeError, make_attrs

SHAPES = [(4,), (3, 5), (2, 3, 4), (2, 2, 2, 3)]


def torch_scale(xs, p, a):
    x = xs[0]
    view = (1, -1) + (1,) * (x.dim() - 2)
    y = x * p["W"].reshape(view)
    return y + p["b"].reshape(view) if "b" in p else y


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_scale_matches_torch(shape, use_bias):
    check_against_torch("scale", {"use_bias": use_bias}, [shape], torch_scale,
                        rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_scale_gradients(shape):
    check_gradients("scale", {}, [shape])


def test_scale_parameters_shape_rule_and_flops():
    op, a = REGISTRY["scale"], make_attrs("scale")
    specs = op.params(a, [(3, 4, 4)])
    assert {k: (s.shape, s.init, s.regularize) for k, s in specs.items()} == \
        {"W": ((3,), "ones", False), "b": ((3,), "zeros", False)}
    assert set(op.params(make_attrs("scale", use_bias=False), [(3,)])) == {"W"}
    assert op.shape(a, [(6, 2)]) == (6, 2) and op.flops(a, [(6, 2)], (6, 2)) == 24
    x, p = np.array([[1.0, 2.0], [3.0, -4.0]]), {"W": np.array([2.0, -1.0]),
                                                 "b": np.array([0.5, 0.0])}
    np.testing.assert_array_equal(op.forward(RunContext(), a, [x], p), [[2.5, -2.0],
                                                                        [6.5, 4.0]])
    with pytest.raises(ShapeError):
        op.shape(a, [()])


SPEC = """
nngraph: 1
name: scaled
inputs: {image: {shape: [2, 6, 6]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, filters: 4, kernel: 3, use_bias: false}   # batchnorm removes a bias
  - {op: batchnorm, use_bias: false}
  - {op: scale, name: affine, activation: relu}
  - {op: flatten}
  - {op: dense, units: 6}
  - {op: scale, name: gain, use_bias: false}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


def test_scale_starts_as_the_identity():
    model = nngraph.compile(SPEC, backend="reference", seed=0)
    np.testing.assert_array_equal(model.params["affine.W"], np.ones(4, np.float32))
    np.testing.assert_array_equal(model.params["affine.b"], np.zeros(4, np.float32))
    assert "gain.b" not in model.params


def test_scale_is_a_reference_group_on_purpose():
    assert "scale" in lower.REFERENCE_ONLY


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_spec_trains_on_cpu_as_on_reference(dtype, rtol):
    cpu, ref = matches_reference(SPEC, dtype, rtol)
    assert cpu.backend == "cpu"
    assert not np.allclose(ref.params["affine.W"], 1.0)        # the scale learned
