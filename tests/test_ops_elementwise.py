"""Activations and merges: gradients, PyTorch agreement, the scalar rules the code generator
inlines, dtypes, numerical stability and shape errors."""
import ast
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from op_harness import BATCH, check_against_torch, check_gradients
from nngraph.ops import REGISTRY, RunContext, ShapeError, make_attrs

SHAPE = (4, 3)


def away_from(kinks, shape=SHAPE, seed=0, gap=0.05):
    """Random inputs (batch first) pushed at least `gap` away from each kink, so that finite
    differences never straddle one."""
    x = np.random.default_rng(seed).normal(size=(BATCH,) + shape) * 1.5
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + 2 * gap * np.where(x[near] >= k, 1.0, -1.0)
    return x


def straight_through_step(x):
    hard = (x > 0).to(x.dtype)
    return x + (hard - x).detach()


# name, attrs, torch reference, kinks of the function (inputs stay away from them)
ACTIVATIONS = [
    ("identity", {}, lambda x, a: x, []),
    ("step", {}, lambda x, a: straight_through_step(x), [0.0]),
    ("sigmoid", {}, lambda x, a: torch.sigmoid(x), []),
    ("tanh", {}, lambda x, a: torch.tanh(x), []),
    ("leaky_relu", {}, lambda x, a: F.leaky_relu(x, a.alpha), [0.0]),
    ("leaky_relu", {"alpha": 0.3}, lambda x, a: F.leaky_relu(x, a.alpha), [0.0]),
    ("elu", {}, lambda x, a: F.elu(x, a.alpha), [0.0]),
    ("elu", {"alpha": 0.5}, lambda x, a: F.elu(x, a.alpha), [0.0]),
    ("softplus", {}, lambda x, a: F.softplus(x), []),
    ("gaussian", {}, lambda x, a: torch.exp(-x ** 2 / a.sigma ** 2), []),
    ("gaussian", {"sigma": 0.7}, lambda x, a: torch.exp(-x ** 2 / a.sigma ** 2), []),
    ("ramp", {}, lambda x, a: torch.clamp(x, -1, 1), [-1.0, 1.0]),
    ("softmax", {}, lambda x, a: torch.softmax(x, -1), []),
    ("log_softmax", {}, lambda x, a: torch.log_softmax(x, -1), []),
]
CASES = pytest.mark.parametrize("name,attrs,ref,kinks", ACTIVATIONS,
                                ids=[f"{n}-{a}" if a else n for n, a, _, _ in ACTIVATIONS])
ELEMENTWISE = sorted({n for n, *_ in ACTIVATIONS if REGISTRY[n].scalar is not None} | {"relu"})


@CASES
def test_activation_matches_torch(name, attrs, ref, kinks):
    x = away_from(kinks)
    check_against_torch(name, attrs, [SHAPE], lambda xs, p, a: ref(xs[0], a), inputs=[x])


# step is left out: its backward is straight-through by design, not its derivative (0)
@pytest.mark.parametrize("name,attrs,kinks", [(n, a, k) for n, a, _, k in ACTIVATIONS
                                              if n != "step"])
def test_activation_gradients(name, attrs, kinks):
    check_gradients(name, attrs, [SHAPE], inputs=[away_from(kinks)])


def test_step_backward_is_straight_through():
    op, a = REGISTRY["step"], make_attrs("step")
    x = np.array([[-2.0, -0.1, 0.0, 0.1, 3.0]])
    gy = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    y = op.forward(RunContext(), a, [x], {})
    np.testing.assert_array_equal(y, [[0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(op.backward(RunContext(), a, [x], {}, y, gy)[0][0], gy)


@CASES
def test_activation_keeps_float32(name, attrs, ref, kinks):
    op, a = REGISTRY[name], make_attrs(name, **attrs)
    x = away_from(kinks).astype(np.float32)
    ctx = RunContext()
    y = op.forward(ctx, a, [x], {})
    (gx,), _ = op.backward(ctx, a, [x], {}, y, np.ones_like(y))
    assert y.dtype == np.float32 and gx.dtype == np.float32


# avoids the kinks at 0 and ±1; ±40 and ±800 probe overflow
POINTS = np.array([-800.0, -40.0, -3.5, -1.2, -0.5, -0.02, 0.3, 0.8, 1.5, 4.0, 40.0, 800.0])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_scalar_rules_match_numpy(name):
    op = REGISTRY[name]
    for attrs in [{}] + [a for n, a, *_ in ACTIVATIONS if n == name and a]:
        a = make_attrs(name, **attrs)
        x = POINTS[None, :]
        gy = np.linspace(-1.0, 2.0, x.size)[None, :]
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y = op.forward(RunContext(), a, [x], {})
            (gx,), _ = op.backward(RunContext(), a, [x], {}, y, gy)
        fwd, bwd = op.scalar
        env = dict(a)
        for i, xi in enumerate(x[0]):
            yi = eval(fwd, {"math": math}, {**env, "x": float(xi)})
            gi = eval(bwd, {"math": math}, {**env, "x": float(xi), "y": float(y[0, i]),
                                            "gy": float(gy[0, i])})
            np.testing.assert_allclose(yi, y[0, i], rtol=1e-12, err_msg=f"{name} fwd x={xi}")
            np.testing.assert_allclose(gi, gx[0, i], rtol=1e-12, err_msg=f"{name} bwd x={xi}")


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_scalar_rules_use_only_math_and_known_names(name):
    op = REGISTRY[name]
    allowed = {"x", "y", "gy", "math"} | set(op.attr_names)
    for i, src in enumerate(op.scalar):
        for node in ast.walk(ast.parse(src, mode="eval")):
            if isinstance(node, ast.Name):
                assert node.id in allowed, f"{name}: unknown name {node.id!r} in {src!r}"
                assert i == 1 or node.id not in ("y", "gy"), f"{name}: forward uses {node.id}"
            if isinstance(node, ast.Attribute):
                assert isinstance(node.value, ast.Name) and node.value.id == "math", src
            if isinstance(node, ast.Call):
                assert isinstance(node.func, ast.Attribute), f"{name}: bare call in {src!r}"


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_large_inputs(name, dtype):
    op, a = REGISTRY[name], make_attrs(name)
    x = np.array([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = op.forward(RunContext(), a, [x], {})
        (gx,), _ = op.backward(RunContext(), a, [x], {}, y, np.ones_like(y))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(gx))
    if name == "sigmoid":
        np.testing.assert_allclose(y[0], [0, 0, 0.5, 1, 1], atol=1e-30)
    if name == "softplus":
        np.testing.assert_allclose(y[0, 3:], [100, 1000])


def test_activation_usable_on_a_layer():
    import nngraph
    net = nngraph.load({"nngraph": 1, "name": "t", "inputs": {"x": {"shape": [4]}},
                        "layers": [{"op": "dense", "units": 3,
                                    "activation": {"leaky_relu": {"alpha": 0.2}}},
                                   {"op": "dense", "units": 2, "activation": "gaussian"}],
                        "outputs": ["dense_2"]})
    assert net is not None


# ------------------------------------------------------------------------------ merges

@pytest.mark.parametrize("n", [2, 3])
def test_add(n):
    shapes = [(2, 3)] * n
    check_gradients("add", {}, shapes)
    check_against_torch("add", {}, shapes, lambda xs, p, a: sum(xs[1:], xs[0]))


@pytest.mark.parametrize("n", [2, 3])
def test_multiply(n):
    shapes = [(2, 3)] * n
    check_gradients("multiply", {}, shapes)
    check_against_torch("multiply", {}, shapes, lambda xs, p, a: math.prod(xs[1:], start=xs[0]))


def test_multiply_gradient_where_an_input_is_zero():
    x = np.zeros((BATCH, 4))
    check_gradients("multiply", {}, [(4,), (4,)], inputs=[x, None])


@pytest.mark.parametrize("axis,shapes,out", [
    (0, [(2, 3, 3), (4, 3, 3)], (6, 3, 3)),                 # channels
    (-1, [(3, 2), (3, 5), (3, 1)], (3, 8)),
    (1, [(2, 1, 3), (2, 2, 3)], (2, 3, 3)),
    (0, [(3,), (2,)], (5,)),
])
def test_concat(axis, shapes, out):
    op = REGISTRY["concat"]
    assert op.shape(make_attrs(op, axis=axis), shapes) == out
    check_gradients("concat", dict(axis=axis), shapes)
    dim = axis % len(shapes[0]) + 1
    check_against_torch("concat", dict(axis=axis), shapes,
                        lambda xs, p, a: torch.cat(xs, dim=dim))


def shape_error(name, shapes, **attrs):
    op = REGISTRY[name]
    with pytest.raises(ShapeError) as e:
        op.shape(make_attrs(op, **attrs), shapes)
    return e.value


@pytest.mark.parametrize("name", ["add", "multiply"])
def test_merge_of_mismatched_shapes_lists_every_input(name):
    e = shape_error(name, [(16, 8, 8), (16, 8, 8), (8, 8, 8)])
    assert str(e) == (f"{name} needs inputs of identical shapes, got [16, 8, 8], [16, 8, 8], "
                      "[8, 8, 8]")


def test_concat_errors():
    e = shape_error("concat", [(16, 8, 8), (32, 4, 4)])
    assert "[16, 8, 8], [32, 4, 4]" in str(e) and "at axis 1 (4 vs 8)" in str(e)
    e = shape_error("concat", [(16, 8, 8), (32, 8, 8)], axis=3)
    assert e.attr == "axis" and "-3..2" in str(e)
    e = shape_error("concat", [(16, 8, 8), (128,)])
    assert "same number of dimensions" in str(e)
    e = shape_error("concat", [(), ()])
    assert "at least one dimension" in str(e)


def test_merge_error_reaches_the_user_at_the_layer():
    import nngraph
    with pytest.raises(nngraph.SpecError) as e:
        nngraph.load({"nngraph": 1, "name": "t", "inputs": {"x": {"shape": [4]}},
                      "layers": [{"op": "dense", "name": "a", "units": 3},
                                 {"op": "dense", "name": "b", "in": "x", "units": 5},
                                 {"op": "add", "name": "s", "in": ["a", "b"]}],
                      "outputs": ["s"]})
    assert "error[E030]: layer 's' (add): add needs inputs of identical shapes, got [3], [5]" \
        in str(e.value)
