"""The losses summed over their prediction's elements on the CUDA backend (mse, mae,
sigmoid_cross_entropy, hinge, logistic, exponential; lower/_pointwise.py): one network with
all six on its outputs, mean and sum reductions and weights, equals the reference in its
losses, gradients and three steps; a loss on a network input computes the loss alone."""
import numpy as np
import pytest

import nngraph

SPEC = """
nngraph: 1
name: six_losses
inputs: {x: {shape: [3]}, y: {shape: [2]}, s: {shape: [2]}}
layers:
  - {op: dense, name: a, in: x, units: 2, activation: tanh}
  - {op: dense, name: b, in: x, units: 2}
outputs: [a, b]
losses:
  - {op: mse, in: [a, y]}
  - {op: mae, in: [b, y], weight: 0.5}
  - {op: sigmoid_cross_entropy, in: [b, y], reduction: sum}
  - {op: hinge, in: [a, y], margin: 0.3, weight: 2.0}
  - {op: logistic, in: [b, y]}
  - {op: exponential, in: [a, y], weight: 0.1}
  - {op: hinge, name: on_input, in: [s, y], weight: 0.5}
train: {optimizer: {type: adam, lr: 0.01}}
"""


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_pointwise_losses_match_the_reference(dtype, tol):
    m = nngraph.compile(SPEC, backend="cuda", dtype=dtype, seed=1)
    r = nngraph.compile(SPEC, backend="reference", dtype=dtype, seed=1)
    assert not any(m.executor.gen.uses_reference(mode) for mode in m.executor.gen.drivers)
    rng = np.random.default_rng(0)
    data = {"x": rng.standard_normal((3, 3)), "y": rng.choice([-1.0, 1.0], (3, 2)),
            "s": rng.standard_normal((3, 2))}
    em, er = m.evaluate(data), r.evaluate(data)
    for k in er:
        assert em[k] == pytest.approx(er[k], rel=tol, abs=tol), k
    gm, gr = m.gradients(data), r.gradients(data)
    for k in gr:
        np.testing.assert_allclose(gm[k], gr[k], rtol=tol, atol=tol, err_msg=k)
    for _ in range(3):
        assert m.train_step(data) == pytest.approx(r.train_step(data), rel=tol, abs=tol)
    for k in r.params:
        np.testing.assert_allclose(m.params[k], r.params[k], rtol=tol, atol=tol, err_msg=k)


SOFTMAX = """
nngraph: 1
name: softmax_layers
inputs: {x: {shape: [4]}, y: {shape: [2, 3]}}
layers:
  - {op: dense, name: d, in: x, units: 6}
  - {op: reshape, name: rows, in: d, shape: [2, 3]}
  - {op: softmax, name: p, in: rows}
  - {op: log_softmax, name: q, in: rows}
  - {op: add, name: s, in: [p, q]}
outputs: [s]
losses:
  - {op: mse, in: [s, y]}
train: {optimizer: {type: sgd, lr: 0.1}}
"""


def test_softmax_and_log_softmax_layers_match_the_reference():
    """Over the last axis of (2, 3) samples (rows of a reshaped view), a block per row."""
    m = nngraph.compile(SOFTMAX, backend="cuda", dtype="float64", seed=2)
    r = nngraph.compile(SOFTMAX, backend="reference", dtype="float64", seed=2)
    assert not any(m.executor.gen.uses_reference(mode) for mode in m.executor.gen.drivers)
    rng = np.random.default_rng(1)
    data = {"x": rng.standard_normal((3, 4)), "y": rng.standard_normal((3, 2, 3))}
    np.testing.assert_allclose(m.predict({"x": data["x"]}), r.predict({"x": data["x"]}),
                               rtol=1e-9, atol=1e-12)
    gm, gr = m.gradients(data), r.gradients(data)
    for k in gr:
        np.testing.assert_allclose(gm[k], gr[k], rtol=1e-9, atol=1e-12, err_msg=k)


SEQUENCE_DENSE = """
nngraph: 1
name: dense_over_steps
inputs: {x: {shape: [3, 4]}, y: {shape: [3, 2]}}
layers:
  - {op: dense, name: h, in: x, units: 5, activation: tanh}
  - {op: dense, name: o, in: h, units: 2}
outputs: [o]
losses:
  - {op: mse, in: [o, y]}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


def test_dense_over_the_last_axis_of_sequences_matches_the_reference():
    """dense on (steps, features) samples: one product over every step of the batch."""
    m = nngraph.compile(SEQUENCE_DENSE, backend="cuda", dtype="float64", seed=3)
    r = nngraph.compile(SEQUENCE_DENSE, backend="reference", dtype="float64", seed=3)
    assert not any(m.executor.gen.uses_reference(mode) for mode in m.executor.gen.drivers)
    rng = np.random.default_rng(2)
    data = {"x": rng.standard_normal((2, 3, 4)), "y": rng.standard_normal((2, 3, 2))}
    gm, gr = m.gradients(data), r.gradients(data)
    for k in gr:
        np.testing.assert_allclose(gm[k], gr[k], rtol=1e-9, atol=1e-12, err_msg=k)
    for _ in range(2):
        assert m.train_step(data) == pytest.approx(r.train_step(data), rel=1e-9)
    np.testing.assert_allclose(m.predict({"x": data["x"]}), r.predict({"x": data["x"]}),
                               rtol=1e-9, atol=1e-12)
