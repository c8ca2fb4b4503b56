"""selu, softsign and global_maxpool2d, the ops ONNX's Selu, Softsign and GlobalMaxPool
import as: their reference rules against PyTorch and finite differences in float64, their
scalar rules (the fused kernels' code) against the numpy ones, and a small network of all
three that trains on the cpu backend (activations fused, the pool as a reference group)
exactly as on the reference backend."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nngraph
from op_harness import BATCH, check_against_torch, check_gradients
from test_backends import matches_reference
from nngraph.backends.cpu import lower
from nngraph.ops import REGISTRY, AttrError, RunContext, ShapeError, make_attrs

SHAPE = (4, 5)


def away_from_zero(shape, seed=0, gap=0.05):
    x = np.random.default_rng(seed).normal(size=(BATCH,) + shape) * 2
    return np.where(np.abs(x) < gap, np.where(x >= 0, 2 * gap, -2 * gap), x)


def torch_selu(xs, p, a):
    x = xs[0]
    return a.gamma * torch.where(x > 0, x, a.alpha * torch.expm1(x))


SELU_ATTRS = [{}, {"alpha": 0.5, "gamma": 2.0}, {"alpha": 0.0}]


@pytest.mark.parametrize("attrs", SELU_ATTRS)
def test_selu_matches_torch(attrs):
    check_against_torch("selu", attrs, [SHAPE], torch_selu, inputs=[away_from_zero(SHAPE)],
                        rtol=1e-10, atol=1e-12)


def test_selu_defaults_are_torchs():
    check_against_torch("selu", {}, [SHAPE], lambda xs, p, a: F.selu(xs[0]),
                        inputs=[away_from_zero(SHAPE)], rtol=1e-10, atol=1e-12)


def test_softsign_matches_torch():
    check_against_torch("softsign", {}, [SHAPE], lambda xs, p, a: F.softsign(xs[0]),
                        inputs=[away_from_zero(SHAPE)], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,attrs", [("selu", {}), ("selu", SELU_ATTRS[1]),
                                        ("softsign", {})])
def test_activation_gradients(name, attrs):
    check_gradients(name, attrs, [SHAPE], inputs=[away_from_zero(SHAPE)])


POINTS = np.array([-800.0, -40.0, -3.5, -1.2, -0.5, -0.02, 0.3, 0.8, 1.5, 4.0, 40.0, 800.0])


@pytest.mark.parametrize("name,attrs", [("selu", {}), ("selu", SELU_ATTRS[1]),
                                        ("softsign", {})])
def test_scalar_rules_match_numpy(name, attrs):
    """The expressions the fused cpu and cuda kernels compile, against the numpy rules."""
    op, a = REGISTRY[name], make_attrs(name, **attrs)
    x = POINTS[None, :]
    gy = np.linspace(-1.0, 2.0, x.size)[None, :]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = op.forward(RunContext(), a, [x], {})
        (gx,), _ = op.backward(RunContext(), a, [x], {}, y, gy)
    fwd, bwd = op.scalar
    for i, xi in enumerate(x[0]):
        env = {**dict(a), "x": float(xi), "y": float(y[0, i]), "gy": float(gy[0, i])}
        assert eval(fwd, {"math": math}, env) == pytest.approx(y[0, i], rel=1e-12)
        assert eval(bwd, {"math": math}, env) == pytest.approx(gx[0, i], rel=1e-12, abs=1e-15)


def test_selu_attributes():
    a = make_attrs("selu")
    assert a.alpha == pytest.approx(1.6732632423543772) and \
        a.gamma == pytest.approx(1.0507009873554805)
    with pytest.raises(AttrError):
        make_attrs("selu", gamma=0.0)
    with pytest.raises(AttrError):
        make_attrs("selu", alpha=-1.0)
    assert {"selu", "softsign"} <= set(nngraph.ops.activations())


GMP_SHAPES = [(3, 4, 5), (2, 1, 1), (1, 3, 2)]


@pytest.mark.parametrize("shape", GMP_SHAPES)
def test_global_maxpool_matches_torch(shape):
    check_against_torch("global_maxpool2d", {}, [shape],
                        lambda xs, p, a: F.adaptive_max_pool2d(xs[0], 1).flatten(1),
                        rtol=1e-10, atol=1e-12)
    check_against_torch("global_maxpool2d", {}, [shape],
                        lambda xs, p, a: torch.amax(xs[0], dim=(2, 3)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", GMP_SHAPES)
def test_global_maxpool_gradients(shape):
    check_gradients("global_maxpool2d", {}, [shape])


def test_global_maxpool_ties_go_to_the_first_maximum_as_maxpool2d():
    op, a = REGISTRY["global_maxpool2d"], make_attrs("global_maxpool2d")
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    y = op.forward(RunContext(), a, [x], {})
    (gx,), _ = op.backward(RunContext(), a, [x], {}, y, np.array([[5.0]]))
    np.testing.assert_array_equal(gx, [[[[0.0, 5.0], [0.0, 0.0]]]])
    mp, ma = REGISTRY["maxpool2d"], make_attrs("maxpool2d", size=2)
    ctx = RunContext()
    my = mp.forward(ctx, ma, [x], {})
    np.testing.assert_array_equal(mp.backward(ctx, ma, [x], {}, my, np.full_like(my, 5.0))[0][0],
                                  gx)


def test_global_maxpool_shape_rule():
    op, a = REGISTRY["global_maxpool2d"], make_attrs("global_maxpool2d")
    assert op.shape(a, [(6, 3, 2)]) == (6,) and op.flops(a, [(6, 3, 2)], (6,)) == 36
    with pytest.raises(ShapeError):
        op.shape(a, [(6, 3)])
    assert "global_maxpool2d" in lower.REFERENCE_ONLY


SPEC = """
nngraph: 1
name: selu_softsign_gmp
inputs: {image: {shape: [2, 6, 6]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, filters: 4, kernel: 3, activation: softsign}
  - {op: global_maxpool2d, name: pool}
  - {op: dense, units: 6, activation: selu}
  - {op: softsign, name: squash}
  - {op: dense, units: 5, activation: {selu: {alpha: 0.5, gamma: 1.5}}}
  - {op: selu, name: act}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_spec_trains_on_cpu_as_on_reference(dtype, rtol):
    cpu, ref = matches_reference(SPEC, dtype, rtol)
    assert cpu.backend == "cpu"


def test_only_the_pool_runs_its_numpy_rule_on_cpu(tmp_path):
    """The activations compile into kernels (fused into conv2d's and dense's epilogues or
    standalone loops); global_maxpool2d is a reference group on purpose."""
    spec = tmp_path / "net.yaml"
    spec.write_text(SPEC)
    from nngraph.cli import main
    assert main(["compile", str(spec), "--emit", str(tmp_path / "out")]) == 0
    rows = [line.split() for line in (tmp_path / "out" / "index.txt").read_text().splitlines()]
    runs = {r[0]: r[2] for r in rows if len(r) > 3 and r[1] in ("forward", "backward")}
    assert {g for g, how in runs.items() if how == "reference"} == {"pool", "d_pool"}, runs
