"""Training vs evaluation behaviour: batchnorm's running statistics, dropout and noise being
identity in evaluation, dropout's expected value, and embedding's index check."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nngraph.errors import DataError
from nngraph.ops import REGISTRY, RunContext, make_attrs


def run(name, x, training=True, state=None, seed=0, p=None, **attrs):
    op = REGISTRY[name]
    a = make_attrs(op, **attrs)
    ctx = RunContext(training=training, rng=np.random.default_rng(seed),
                     state={} if state is None else state)
    return op.forward(ctx, a, [x], p or {}), ctx, op, a


def _bn_params(c, dtype=np.float64):
    rng = np.random.default_rng(9)
    return {"gamma": rng.uniform(0.5, 1.5, c).astype(dtype),
            "beta": rng.normal(size=c).astype(dtype)}


def test_batchnorm_running_statistics_update():
    rng = np.random.default_rng(0)
    state = {}
    mean, var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.normal(2.0 + step, 3.0, size=(4, 3, 2, 5))
        run("batchnorm", x, state=state, p=_bn_params(3), momentum=0.8)
        per_channel = x.transpose(1, 0, 2, 3).reshape(3, -1)
        mean = 0.8 * mean + 0.2 * per_channel.mean(axis=1)
        var = 0.8 * var + 0.2 * per_channel.var(axis=1, ddof=1)     # unbiased, as PyTorch
        np.testing.assert_allclose(state["running_mean"], mean, rtol=1e-12)
        np.testing.assert_allclose(state["running_var"], var, rtol=1e-12)


def test_batchnorm_running_statistics_match_torch():
    """Torch's momentum weighs the new value: ours 0.9 is torch's 0.1."""
    rng = np.random.default_rng(1)
    state = {}
    t_mean, t_var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    for _ in range(2):
        x = rng.normal(1.0, 2.0, size=(5, 4, 3))
        y, *_ = run("batchnorm", x, state=state, p=_bn_params(4))
        ty = F.batch_norm(torch.tensor(x), t_mean, t_var, torch.tensor(_bn_params(4)["gamma"]),
                          torch.tensor(_bn_params(4)["beta"]), training=True, momentum=0.1)
        np.testing.assert_allclose(y, ty.numpy(), rtol=1e-10)
    np.testing.assert_allclose(state["running_mean"], t_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], t_var.numpy(), rtol=1e-12)


def test_batchnorm_starts_from_state_spec_and_evaluates_with_running_statistics():
    x = np.random.default_rng(2).normal(size=(6, 2))
    _, ctx, *_ = run("batchnorm", x, training=False, p=_bn_params(2))
    np.testing.assert_array_equal(ctx.state["running_mean"], [0, 0])   # from the StateSpec
    np.testing.assert_array_equal(ctx.state["running_var"], [1, 1])
    state = {"running_mean": np.array([0.5, -1.0]), "running_var": np.array([4.0, 0.25])}
    p = _bn_params(2)
    y, *_ = run("batchnorm", x, training=False, state=state, p=p, eps=1e-5)
    x_hat = (x - state["running_mean"]) / np.sqrt(state["running_var"] + 1e-5)
    want = x_hat * p["gamma"] + p["beta"]
    np.testing.assert_allclose(y, want, rtol=1e-12)
    np.testing.assert_array_equal(state["running_mean"], [0.5, -1.0])  # unchanged in evaluation


def test_batchnorm_training_normalizes_each_channel():
    x = np.random.default_rng(3).normal(5.0, 4.0, size=(8, 3, 4)).astype(np.float32)
    y, ctx, *_ = run("batchnorm", x, p={"gamma": np.ones(3, np.float32),
                                        "beta": np.zeros(3, np.float32)})
    assert y.dtype == np.float32 and ctx.state["running_mean"].dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1, rtol=1e-3)


@pytest.mark.parametrize("name,attrs", [("dropout", dict(rate=0.5)),
                                        ("gaussian_noise", dict(stddev=1.0))])
def test_noise_is_identity_in_evaluation(name, attrs):
    x = np.random.default_rng(4).normal(size=(3, 4, 5)).astype(np.float32)
    y, ctx, op, a = run(name, x, training=False, **attrs)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == np.float32
    gy = np.ones_like(x)
    (gx,), _ = op.backward(ctx, a, [x], {}, y, gy)
    np.testing.assert_array_equal(gx, gy)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_keeps_the_expected_value(rate):
    x = np.full((50, 2000), 3.0)
    y, ctx, *_ = run("dropout", x, rate=rate, seed=7)
    sigma_of_mean = 3.0 * (rate / (1 - rate)) ** 0.5 / x.size ** 0.5
    assert abs(y.mean() - 3.0) < 5 * sigma_of_mean
    assert abs((y == 0).mean() - rate) < 0.01
    np.testing.assert_allclose(y[y != 0], 3.0 / (1 - rate))
    np.testing.assert_array_equal(ctx.saved["mask"], y != 0)


def test_dropout_draws_a_new_mask_each_step():
    x = np.ones((4, 100))
    a, _, *_ = run("dropout", x, seed=1)
    b, _, *_ = run("dropout", x, seed=2)
    assert (a != b).any()


def test_gaussian_noise_statistics():
    x = np.zeros((100, 1000), dtype=np.float32)
    y, *_ = run("gaussian_noise", x, stddev=0.2)
    assert y.dtype == np.float32
    assert abs(y.mean()) < 0.005 and abs(y.std() - 0.2) < 0.005


@pytest.mark.parametrize("bad", [5, 17, -1])
def test_embedding_index_out_of_range(bad):
    idx = np.array([[0, 1, bad], [2, 3, 4]])
    w = np.zeros((5, 2))
    with pytest.raises(DataError, match=rf"index {bad} .*vocab = 5"):
        run("embedding", idx, p={"W": w}, vocab=5, dim=2)


def test_embedding_rejects_float_indices():
    with pytest.raises(DataError, match="integer"):
        run("embedding", np.array([[1.0, 2.0]]), p={"W": np.zeros((5, 2))}, vocab=5, dim=2)
