"""lrn and prelu, the ops ONNX zoo networks (AlexNet, GoogLeNet, ...) need: their reference
rules against PyTorch and finite differences in float64, their attributes and shapes, the
prelu slope's initial value, and a small network of both that trains on the cpu backend
(their numpy rules run there as reference groups) exactly as on the reference backend."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nngraph
from op_harness import BATCH, check_against_torch, check_gradients
from test_backends import matches_reference
from nngraph.backends.cpu import lower
from nngraph.ops import REGISTRY, AttrError, RunContext, ShapeError, make_attrs

LRN_CASES = [
    ({"size": 3}, (5, 4, 3)),
    ({"size": 5, "alpha": 0.3, "beta": 0.9, "bias": 2.0}, (7, 3, 2)),
    ({"size": 5, "alpha": 1.0, "beta": 0.5, "bias": 0.5}, (3, 4)),      # wider than C
    ({"size": 1, "alpha": 0.7}, (4,)),
    ({"size": 3, "alpha": 0.2, "beta": 1.5}, (6, 2, 2, 2)),
]


def torch_lrn(xs, p, a):
    """local_response_norm wants (N, C, *) with at least one axis after C."""
    x = xs[0]
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    y = F.local_response_norm(flat, a.size, alpha=a.alpha, beta=a.beta, k=a.bias)
    return y.reshape(x.shape)


@pytest.mark.parametrize("attrs,shape", LRN_CASES)
def test_lrn_matches_torch(attrs, shape):
    check_against_torch("lrn", attrs, [shape], torch_lrn, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("attrs,shape", LRN_CASES)
def test_lrn_gradients(attrs, shape):
    check_gradients("lrn", attrs, [shape])


def test_lrn_backward_without_saved_state():
    """backward recomputes the normalizer when forward ran in another context."""
    op, a = REGISTRY["lrn"], make_attrs("lrn", size=3, alpha=0.5)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    y = op.forward(RunContext(), a, [x], {})
    gy = np.ones_like(y)
    ctx = RunContext()
    op.forward(ctx, a, [x], {})
    np.testing.assert_allclose(op.backward(RunContext(), a, [x], {}, y, gy)[0][0],
                               op.backward(ctx, a, [x], {}, y, gy)[0][0], rtol=1e-14)


@pytest.mark.parametrize("size", [0, 2, 4, -1])
def test_lrn_size_must_be_odd_and_positive(size):
    with pytest.raises(AttrError):
        make_attrs("lrn", size=size)


def test_lrn_defaults_and_shape_rule():
    op, a = REGISTRY["lrn"], make_attrs("lrn", size=5)
    assert (a.alpha, a.beta, a.bias) == (1e-4, 0.75, 1.0)
    assert op.shape(a, [(3, 4, 5)]) == (3, 4, 5)
    assert op.flops(a, [(3, 4, 5)], (3, 4, 5)) == 11 * 60
    with pytest.raises(ShapeError):
        op.shape(a, [()])
    with pytest.raises(AttrError):
        make_attrs("lrn", size=3, bias=0.0)


def _away_from_zero(shape, seed=0, gap=0.05):
    x = np.random.default_rng(seed).normal(size=(BATCH,) + shape)
    return np.where(np.abs(x) < gap, np.where(x >= 0, 2 * gap, -2 * gap), x)


PRELU_SHAPES = [(4,), (3, 5), (2, 3, 4), (2, 2, 2, 3)]


def torch_prelu(xs, p, a):
    return F.prelu(xs[0], p["a"])


@pytest.mark.parametrize("shape", PRELU_SHAPES)
def test_prelu_matches_torch(shape):
    check_against_torch("prelu", {}, [shape], torch_prelu, inputs=[_away_from_zero(shape)],
                        rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", PRELU_SHAPES)
def test_prelu_gradients(shape):
    check_gradients("prelu", {}, [shape], inputs=[_away_from_zero(shape)])


def test_prelu_at_zero_and_shape_rule():
    op, a = REGISTRY["prelu"], make_attrs("prelu")
    x, p = np.array([[-2.0, 0.0, 3.0]]), {"a": np.array([0.5, 0.5, 0.5])}
    np.testing.assert_array_equal(op.forward(RunContext(), a, [x], p), [[-1.0, 0.0, 3.0]])
    assert op.shape(a, [(6, 2)]) == (6, 2) and op.flops(a, [(6, 2)], (6, 2)) == 24
    with pytest.raises(ShapeError):
        op.shape(a, [()])


SPEC = """
nngraph: 1
name: lrn_prelu
inputs: {image: {shape: [2, 6, 6]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, filters: 5, kernel: 3}
  - {op: prelu, name: act}
  - {op: lrn, name: norm, size: 3, alpha: 0.5, beta: 0.75, bias: 1.5}
  - {op: flatten}
  - {op: dense, units: 6}
  - {op: prelu, name: act2, weight_init: 0.1}
  - {op: lrn, size: 5, alpha: 0.2}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


def test_prelu_slope_starts_at_a_quarter_unless_weight_init_says():
    model = nngraph.compile(SPEC, backend="reference", seed=0)
    np.testing.assert_array_equal(model.params["act.a"], np.full(5, 0.25, np.float32))
    np.testing.assert_allclose(model.params["act2.a"], np.full(6, 0.1))
    assert "norm" not in {k.split(".")[0] for k in model.params}


def test_both_ops_are_reference_groups_on_purpose():
    assert {"lrn", "prelu"} <= set(lower.REFERENCE_ONLY)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_spec_trains_on_cpu_as_on_reference(dtype, rtol):
    cpu, ref = matches_reference(SPEC, dtype, rtol)
    assert cpu.backend == "cpu"
    assert not np.allclose(ref.params["act.a"], 0.25)          # the slope learned


def test_emit_shows_them_as_reference_groups(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(SPEC)
    from nngraph.cli import main
    assert main(["compile", str(spec), "--emit", str(tmp_path / "out")]) == 0
    rows = [line.split() for line in (tmp_path / "out" / "index.txt").read_text().splitlines()]
    runs = {r[0]: r[2] for r in rows if len(r) > 3 and r[1] in ("forward", "backward")}
    for group in ("act", "norm", "act2", "lrn_1", "d_act", "d_norm", "d_act2", "d_lrn_1"):
        assert runs[group] == "reference", (group, runs)
