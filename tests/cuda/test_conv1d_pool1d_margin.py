"""conv1d, maxpool1d and the max_margin loss on the CUDA backend (lower/conv1d.py,
maxpool1d.py, max_margin.py: conv2d's and maxpool2d's kernels on (N, C, 1, L) views, and a
thread per sample for the loss): one network with all three equals the reference in its
losses, gradients, three optimizer steps and predictions, float64 at 1e-9 and float32 at
1e-4, with no group on host copies; tied rivals give the gradient to the first."""
import numpy as np
import pytest

import nngraph

# c1: padding 'same' with a relu; p1 and p2 read c1 (its gradient has two contributions),
# p2's windows overlap and are padded; c2 strides, without a bias; c3 dilates, on p2 (an
# input gradient through a padded pool); p3 pads 'same'; a loss on a network input has no
# gradient to compute.
SPEC = """
nngraph: 1
name: conv1d_pool1d_margin
inputs: {x: {shape: [2, 8]}, s: {shape: [3]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv1d, name: c1, in: x, filters: 3, kernel: 3, padding: same, activation: relu}
  - {op: maxpool1d, name: p1, in: c1, size: 2}
  - {op: conv1d, name: c2, in: p1, filters: 2, kernel: 2, stride: 2, use_bias: false}
  - {op: maxpool1d, name: p2, in: c1, size: 3, stride: 1, padding: 1}
  - {op: conv1d, name: c3, in: p2, filters: 2, kernel: 3, dilation: 2, padding: 1,
     activation: tanh}
  - {op: maxpool1d, name: p3, in: c3, size: 2, stride: 2, padding: same}
  - {op: flatten, name: f2, in: c2}
  - {op: flatten, name: f3, in: p3}
  - {op: dense, name: h2, in: f2, units: 3}
  - {op: dense, name: h3, in: f3, units: 3}
  - {op: add, name: logits, in: [h2, h3]}
outputs: [logits]
losses:
  - {op: max_margin, in: [logits, label], margin: 0.5}
  - {op: max_margin, name: second, in: [logits, label], reduction: sum, weight: 0.3}
  - {op: max_margin, name: on_input, in: [s, label], weight: 0.5}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""

def _data(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((2, 2, 8)), "s": rng.standard_normal((2, 3)),
            "label": rng.integers(0, 3, 2)}


def _models(dtype, seed=1):
    m = nngraph.compile(SPEC, backend="cuda", dtype=dtype, seed=seed)
    r = nngraph.compile(SPEC, backend="reference", dtype=dtype, seed=seed)
    gen = m.executor.gen
    assert not any(gen.uses_reference(mode) for mode in gen.drivers), \
        "a group runs its numpy rule on host copies"
    return m, r


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_conv1d_maxpool1d_and_max_margin_match_the_reference(dtype, tol):
    m, r = _models(dtype)
    assert "x.reshape(-1, 2, 1, 8)" in m.executor.source         # conv2d's kernels on views
    data = _data()
    em, er = m.evaluate(data), r.evaluate(data)
    for k in er:
        assert em[k] == pytest.approx(er[k], rel=tol, abs=tol), k
    gm, gr = m.gradients(data), r.gradients(data)
    assert set(gm) == set(gr)
    for k in gr:
        np.testing.assert_allclose(gm[k], gr[k], rtol=tol, atol=tol, err_msg=k)
    for _ in range(3):
        assert m.train_step(data) == pytest.approx(r.train_step(data), rel=tol, abs=tol)
    for k in r.params:
        np.testing.assert_allclose(m.params[k], r.params[k], rtol=tol, atol=tol, err_msg=k)
    features = {"x": data["x"]}
    np.testing.assert_allclose(m.predict(features), r.predict(features), rtol=tol, atol=tol)


def test_max_margin_gives_the_gradient_to_the_first_of_tied_rivals():
    """Zero output layers: every score is 0, every rival ties and the margin is violated;
    the reference (numpy's argmax) and the device both pick the first rival."""
    m, r = _models("float64")
    for model in (m, r):
        for k in ("h2.W", "h2.b", "h3.W", "h3.b"):
            model.params[k][...] = 0.0
    data = _data(1)
    gm, gr = m.gradients(data), r.gradients(data)
    for k in gr:
        np.testing.assert_allclose(gm[k], gr[k], rtol=1e-9, atol=1e-12, err_msg=k)
    assert m.train_step(data) == pytest.approx(r.train_step(data), rel=1e-9)
