"""batchnorm, embedding, dropout, gaussian_noise and kl_sparsity on the CUDA backend (their
lowerings in nngraph/backends/cuda/lower/, kernels in kernels/cuda/): no group runs on host
copies, and forward, gradients, three optimizer steps and the layer state equal the
reference backend's; the random numbers to the last bit, drawn by the device functions of
kernels/cuda/random_stream.py as numpy draws them. Tiny networks: the simulator runs a
Python thread per CUDA thread."""
import numpy as np
import pytest
from numba import cuda

import nngraph
from nngraph import random_stream
from nngraph.backends.cuda import run_state
from nngraph.cli_tools import random_batch
from nngraph.kernels.cuda import random_stream as device_stream

# numpy's 64-bit scalars warn where the simulator's hashes wrap, as the GPU's do on purpose
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def _pair(tmp_path, spec, dtype, seed=0):
    path = tmp_path / "net.yaml"
    path.write_text(spec)
    m = nngraph.compile(str(path), backend="cuda", seed=seed, dtype=dtype)
    r = nngraph.compile(str(path), backend="reference", seed=seed, dtype=dtype)
    assert not any(m.executor.gen.uses_reference(mode) for mode in ("train", "evaluate",
                                                                    "predict"))
    return m, r


def _close(got, want, tol, what=""):
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


def _match(m, r, batch, tol, steps=3):
    """Predictions, evaluation, gradients, `steps` training steps (loss and the values the
    losses read) and then parameters and layer state, against the reference."""
    features = {k: batch[k] for k in m.net.feature_inputs}
    _close(m.predict(features), r.predict(features), tol)          # one output: an array
    _close(m.evaluate(batch)["loss"], r.evaluate(batch)["loss"], tol)
    gm, gr = m.gradients(batch), r.gradients(batch)
    for k in gr:
        _close(gm[k], gr[k], tol, k)
    assert set(gm) == set(gr)
    for _ in range(steps):
        (lm, vm), (lr, vr) = [x._train_batch(x._batch(batch, True, "train")) for x in (m, r)]
        _close(lm, lr, tol)
        for k in vm:                    # the layers' values (the batch's are not read back)
            _close(vm[k], vr[k], tol, k)
    for k in r.params:
        _close(m.params[k], r.params[k], tol, k)
    for k, v in r.flat_state.items():
        _close(m.flat_state[k], v, tol, k)
    return vm, vr


BATCHNORM = """
nngraph: 1
name: tiny_bn
inputs: {x: {shape: [3]}, label: {shape: [], dtype: int64}}
layers:
  - {op: dense, name: a, units: 6}
  - {op: reshape, shape: [2, 3]}
  - {op: batchnorm, name: bn, activation: relu, momentum: 0.8}
  - {op: flatten}
  - {op: dense, name: b, units: 2}
  - {op: batchnorm, name: bn2, use_bias: false}
outputs: [bn2]
losses:
  - {op: softmax_cross_entropy, in: [bn2, label]}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


def test_batchnorm_trains_and_moves_its_statistics_as_the_reference(tmp_path):
    """Per-channel statistics over the batch and a length (C=2, S=3) and over the batch
    alone (C=2, S=1, no beta); evaluate and predict with the running statistics after they
    moved."""
    tol = 1e-9
    m, r = _pair(tmp_path, BATCHNORM, "float64")
    batch = random_batch(m.net, 3, np.random.default_rng(1))
    _match(m, r, batch, tol)
    assert m.flat_state["bn.running_mean"].any() and m.flat_state["bn2.running_var"].all()
    assert "_norm.batchnorm_forward_train(" in m.executor.source
    features = {"x": batch["x"]}
    _close(m.predict(features), r.predict(features), tol)


EMBEDDING = """
nngraph: 1
name: tiny_embed
inputs:
  tokens: {shape: [3], dtype: int64}
  token: {shape: [], dtype: int64}
  label: {shape: [], dtype: int64}
layers:
  - {op: embedding, name: seq, in: tokens, vocab: 4, dim: 2}
  - {op: flatten}
  - {op: dense, name: a, units: 3}
  - {op: embedding, name: one, in: token, vocab: 5, dim: 3}
  - {op: add, name: both, in: [a, one]}
outputs: [both]
losses:
  - {op: softmax_cross_entropy, in: [both, label]}
train: {optimizer: {type: adam, lr: 0.05}}
"""


def test_embedding_gathers_and_scatters_repeated_tokens_as_the_reference(tmp_path):
    """Sequences of tokens from a vocabulary of 4 (so tokens repeat, and their gradients
    add up in one row) and a token per sample."""
    m, r = _pair(tmp_path, EMBEDDING, "float64")
    batch = random_batch(m.net, 3, np.random.default_rng(2))
    batch["tokens"][0] = [1, 1, 3]
    _match(m, r, batch, 1e-9)


NOISE = """
nngraph: 1
name: tiny_noise
inputs: {x: {shape: [5]}, label: {shape: [], dtype: int64}}
layers:
  - {op: gaussian_noise, name: noisy, stddev: 0.7}
  - {op: dense, name: h, units: 4, activation: tanh}
  - {op: dropout, name: drop, rate: 0.4}
  - {op: dense, name: out, units: 3}
outputs: [out]
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
  # so that a step returns noisy's values, x plus the noise alone
  - {op: squared_error, in: [noisy, x], weight: 0.25}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_dropout_and_noise_draw_the_reference_s_numbers(tmp_path, dtype, tol):
    """Each step draws new numbers (the step is a stream word), the very ones the reference
    draws: the noise to the last bit, the same mask forward and backward; evaluate and
    predict are the identity."""
    m, r = _pair(tmp_path, NOISE, dtype, seed=5)
    batch = random_batch(m.net, 3, np.random.default_rng(3))
    batch["x"] = batch["x"].astype(dtype)
    vm, vr = _match(m, r, batch, tol)
    np.testing.assert_array_equal(vm["noisy"], vr["noisy"])
    assert not np.array_equal(vm["noisy"], batch["x"])
    for mode in ("evaluate", "predict"):
        assert "_random_stream." not in m.executor.gen.drivers[mode]


@cuda.jit
def _draw(words, node, first, stddev, u, z):
    i = cuda.grid(1)
    if i < u.size:
        key = device_stream.node_key(words, node)
        u[i] = device_stream.uniform(key, first + i)
        z[i] = device_stream.normal(key, first + i, stddev)


@pytest.mark.parametrize("seed,step,node,first", [(0, 0, 0, 0), (2 ** 64 - 1, 123_456, 11,
                                                                   2 ** 40)])
def test_the_device_functions_draw_the_bits_numpy_draws(seed, step, node, first):
    n = 64
    u, z = cuda.device_array(n), cuda.device_array(n)
    words = cuda.to_device(run_state.stream_words([seed, step], 0))
    _draw[1, n](words, node, first, 0.3, u, z)
    key = random_stream.key([seed, step, node])
    counters = np.arange(first, first + n, dtype=np.uint64)
    np.testing.assert_array_equal(u.copy_to_host(), random_stream.uniform(key, counters))
    np.testing.assert_array_equal(z.copy_to_host(), random_stream.normal(key, counters, 0.3))


SPARSE = """
nngraph: 1
name: tiny_sparse
inputs: {x: {shape: [3]}}
layers:
  - {op: dense, name: code, units: 4, activation: sigmoid}
  - {op: dense, name: decoded, units: 3, activation: sigmoid}
outputs: [decoded]
losses:
  - {op: squared_error, in: [decoded, x]}
  - {op: kl_sparsity, name: sparsity, in: code, rho: 0.1, beta: 3.0, weight: 0.5}
  - {op: kl_sparsity, name: of_input, in: x, rho: 0.3, weight: 0.2}   # no gradient
train: {optimizer: {type: adam, lr: 0.05}}
"""


def test_kl_sparsity_penalty_and_gradient_match_the_reference(tmp_path):
    """On a layer's activations, with its gradient, and on a network input, without."""
    m, r = _pair(tmp_path, SPARSE, "float64")
    batch = random_batch(m.net, 3, np.random.default_rng(4))
    _match(m, r, batch, 1e-9)
    assert "_sparsity.kl_sparsity_loss(" in m.executor.source
    assert "kl_sparsity_loss(v_x, g=None," in m.executor.source
