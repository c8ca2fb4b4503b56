"""Restricted Boltzmann machines and deep belief nets: the rules of `rbm` and
`contrastive_divergence` against direct formulas, scikit-learn's BernoulliRBM as the oracle
(the same update, the same pseudo-likelihood, the same quality after the same training), the
cpu backend against the reference, a DBN's phases and an MLP started from its weights, and
the errors of misuse."""
import itertools
import os

import numpy as np
import pytest

import nngraph
from nngraph.datasets import load_dataset
from nngraph.errors import SpecError
from nngraph.ops import REGISTRY, RunContext, make_attrs
from nngraph.ops import _rbm

sklearn_rbm = pytest.importorskip("sklearn.neural_network")
SPECS = os.path.join(os.path.dirname(__file__), "..", "specs")
RBM, CD = REGISTRY["rbm"], REGISTRY["contrastive_divergence"]


def weights(nv=6, nh=4, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (nv, nh)), rng.normal(0, scale, nh), rng.normal(0, scale, nv))


def binary(n, nv, seed=1):
    return (np.random.default_rng(seed).random((n, nv)) > 0.5).astype(np.float64)


def cd_attrs(k=1, persistent=False, chains=5):
    a = make_attrs("contrastive_divergence")
    a.update(_k=k, _persistent=persistent, _chains=chains)
    return a


def run_cd(v0, W, b, vb, a, seed=0, state=None):
    """(value, gp, ctx) of one training forward and backward of contrastive_divergence."""
    ctx = RunContext(training=True, rng=np.random.default_rng([seed, 0, 1]),
                     state={} if state is None else state)
    p = {"W": W, "b": b, "vb": vb}
    h0 = _rbm.hidden_probs(v0, W, b)
    y = CD.forward(ctx, a, [v0, h0], p)
    gxs, gp = CD.backward(ctx, a, [v0, h0], p, y, np.float64(1.0))
    assert gxs == [None, None]
    return y, gp, ctx


# ------------------------------------------------------------------------------ the rules

def test_free_energy_is_minus_log_sum_over_hidden_states():
    W, b, vb = weights()
    v = binary(3, 6)
    for i in range(3):
        energies = [-(v[i] @ vb) - np.array(h) @ b - v[i] @ W @ np.array(h)
                    for h in itertools.product([0.0, 1.0], repeat=4)]
        direct = -np.log(np.exp(-np.array(energies)).sum())
        assert _rbm.free_energy(v[i:i + 1], W, b, vb)[0] == pytest.approx(direct, abs=1e-12)


@pytest.mark.parametrize("k,persistent", [(1, False), (3, False), (1, True), (2, True)])
def test_gradient_is_the_cd_statistic(k, persistent):
    W, b, vb = weights()
    v0 = binary(5, 6)
    chains = 7 if persistent else 5
    y, gp, ctx = run_cd(v0, W, b, vb, cd_attrs(k, persistent, chains))
    vk, hk = ctx.saved["vk"], ctx.saved["hk"]
    assert set(np.unique(vk)) <= {0.0, 1.0} and len(vk) == chains
    h0 = _rbm.hidden_probs(v0, W, b)
    assert np.allclose(hk, _rbm.hidden_probs(vk, W, b), atol=1e-15)
    # minus the positive minus the negative statistics, each a mean over its rows
    assert np.allclose(gp["W"], -(v0.T @ h0 / 5 - vk.T @ hk / chains), atol=1e-14)
    assert np.allclose(gp["b"], -(h0.mean(0) - hk.mean(0)), atol=1e-14)
    assert np.allclose(gp["vb"], -(v0.mean(0) - vk.mean(0)), atol=1e-14)
    # ... which is the gradient of the free-energy gap with vk held fixed
    gap = lambda W_, b_, vb_: (_rbm.free_energy(v0, W_, b_, vb_).mean()
                               - _rbm.free_energy(vk, W_, b_, vb_).mean())
    assert y == pytest.approx(gap(W, b, vb), abs=1e-12)
    eps, (i, j) = 1e-6, (2, 3)
    Wp, Wm = W.copy(), W.copy()
    Wp[i, j] += eps
    Wm[i, j] -= eps
    assert (gap(Wp, b, vb) - gap(Wm, b, vb)) / (2 * eps) == pytest.approx(gp["W"][i, j],
                                                                          abs=1e-8)
    if persistent:
        assert ctx.state["chain"].shape == (chains, 4)
        assert set(np.unique(ctx.state["chain"])) <= {0.0, 1.0}


def test_persistent_chain_goes_on_and_evaluation_leaves_it():
    W, b, vb = weights()
    v0, state = binary(5, 6), {}
    run_cd(v0, W, b, vb, cd_attrs(1, True), seed=0, state=state)
    after_one = state["chain"].copy()
    ctx = RunContext(training=False, state=state)
    CD.forward(ctx, cd_attrs(1, True), [v0, _rbm.hidden_probs(v0, W, b)],
               {"W": W, "b": b, "vb": vb})
    assert np.array_equal(state["chain"], after_one) and len(ctx.saved["vk"]) == 5
    run_cd(v0, W, b, vb, cd_attrs(1, True), seed=1, state=state)
    assert not np.array_equal(state["chain"], after_one)


def test_rbm_layer_is_a_dense_sigmoid_layer():
    W, b, vb = weights()
    x = np.random.default_rng(2).random((3, 6))
    a = make_attrs("rbm", units=4)
    y = RBM.forward(RunContext(), a, [x], {"W": W, "b": b, "vb": vb})
    assert np.allclose(y, 1 / (1 + np.exp(-(x @ W + b))), atol=1e-15)
    gy = np.random.default_rng(3).normal(size=y.shape)
    (gx,), gp = RBM.backward(RunContext(), a, [x], {"W": W, "b": b, "vb": vb}, y, gy)
    eps = 1e-6
    f = lambda x_, W_: float((1 / (1 + np.exp(-(x_ @ W_ + b))) * gy).sum())
    dx = np.zeros_like(x)
    dx[1, 2] = eps
    assert (f(x + dx, W) - f(x - dx, W)) / (2 * eps) == pytest.approx(gx[1, 2], abs=1e-8)
    dW = np.zeros_like(W)
    dW[4, 1] = eps
    assert (f(x, W + dW) - f(x, W - dW)) / (2 * eps) == pytest.approx(gp["W"][4, 1], abs=1e-8)
    assert np.array_equal(gp["vb"], np.zeros(6))


# -------------------------------------------------------------------- scikit-learn oracle

def sklearn_with(W, b, vb, seed=0, batch_size=5):
    rbm = sklearn_rbm.BernoulliRBM(n_components=W.shape[1], random_state=seed,
                                   batch_size=batch_size, learning_rate=0.1)
    rbm.components_, rbm.intercept_hidden_ = W.T.copy(), b.copy()
    rbm.intercept_visible_, rbm.n_features_in_ = vb.copy(), W.shape[0]
    return rbm


def test_pseudo_likelihood_is_sklearns_score_samples():
    W, b, vb = weights(nv=10, nh=7)
    v = binary(40, 10)
    rbm = sklearn_with(W, b, vb, seed=3)
    flips = np.random.RandomState(3).randint(0, 10, 40)    # what score_samples draws
    ours = _rbm.pseudo_log_likelihood(v, W, b, vb, flips)
    assert np.allclose(ours, rbm.score_samples(v), rtol=1e-12, atol=1e-12)


def test_one_sgd_step_is_sklearns_partial_fit():
    """Same weights, same batch, the same negative samples (sklearn's draw of v from its
    chain replaced by ours): sklearn's update equals one nngraph SGD step of lr."""
    W, b, vb = weights(nv=8, nh=5, scale=0.1)
    v0, lr = binary(6, 8), 0.1
    _, gp, ctx = run_cd(v0, W, b, vb, cd_attrs(1, True, chains=6))
    rbm = sklearn_with(W, b, vb, batch_size=6)
    rbm.h_samples_ = np.zeros((6, 5))
    rbm._sample_visibles = lambda h, rng: ctx.saved["vk"]
    rbm._fit(v0, np.random.RandomState(0))
    assert np.allclose(rbm.components_.T, W - lr * gp["W"], atol=1e-14)
    assert np.allclose(rbm.intercept_hidden_, b - lr * gp["b"], atol=1e-14)
    assert np.allclose(rbm.intercept_visible_, vb - lr * gp["vb"], atol=1e-14)


def _digits():
    x, _ = load_dataset("digits")
    return np.asarray(x, np.float64)


def _scores(x, W, b, vb, draws=5):
    rng = np.random.default_rng(7)
    return np.mean([_rbm.pseudo_log_likelihood(x, W, b, vb, rng.integers(0, 64, len(x))).mean()
                    for _ in range(draws)])


def test_training_matches_sklearn_bernoulli_rbm():
    """64 hidden units, lr 0.05, batch 10, PCD with 10 chains, 4 epochs over the digits in
    order, on both. Over 3 seeds each (tools/compare_rbm.py: 10 epochs give -20.8 for
    scikit-learn and -20.6 for nngraph, seeds spreading by 0.2), the mean PLL agrees
    within 1 nat of 64 and the reconstruction errors within 20%; untrained, the PLL is
    -44.4, so the tolerance is a small part of what training gains."""
    x = _digits()
    ours, theirs, rec_ours, rec_theirs = [], [], [], []
    for seed in range(3):
        rbm = sklearn_rbm.BernoulliRBM(n_components=64, learning_rate=0.05, batch_size=10,
                                       n_iter=4, random_state=seed).fit(x)
        W, b, vb = rbm.components_.T, rbm.intercept_hidden_, rbm.intercept_visible_
        theirs.append(_scores(x, W, b, vb))
        rec_theirs.append(_rbm.reconstruction_error(x, _rbm.hidden_probs(x, W, b), W, vb).mean())
        model = nngraph.compile(os.path.join(SPECS, "rbm_digits.yaml"), backend="reference",
                                seed=seed, dtype="float64")
        model.fit({"image": x}, epochs=4, batch_size=10, shuffle=False, verbose=0)
        report = model.evaluate({"image": x})
        p = model.params
        ours.append(_scores(x, p["rbm1.W"], p["rbm1.b"], p["rbm1.vb"]))
        rec_ours.append(report["reconstruction_error"])
        # evaluate's report: one draw of flipped units, from a generator seeded 0, per
        # batch of 256
        rng = np.random.default_rng(0)
        flips = np.concatenate([rng.integers(0, 64, len(x[i:i + 256]))
                                for i in range(0, len(x), 256)])
        pll = _rbm.pseudo_log_likelihood(x, p["rbm1.W"], p["rbm1.b"], p["rbm1.vb"], flips)
        assert report["pseudo_log_likelihood"] == pytest.approx(pll.mean(), abs=1e-9)
    before = _scores(x, np.zeros((64, 64)), np.zeros(64), np.zeros(64))
    assert np.mean(ours) > before + 15 and np.mean(theirs) > before + 15
    assert abs(np.mean(ours) - np.mean(theirs)) < 1.0, (ours, theirs)
    assert np.mean(rec_ours) == pytest.approx(np.mean(rec_theirs), rel=0.2)


# ------------------------------------------------------------------------- through compile

SMALL = {"nngraph": 1, "name": "rbm_small", "inputs": {"x": {"shape": [6]}},
         "layers": [{"op": "rbm", "name": "rbm1", "units": 4}], "outputs": ["rbm1"],
         "train": {"optimizer": {"type": "sgd", "lr": 0.1}, "batch_size": 5}}


def small(**rbm):
    spec = {**SMALL, "layers": [{**SMALL["layers"][0], **rbm}]}
    return spec


def test_an_rbm_needs_no_losses_section_and_reports_its_measures():
    net = nngraph.load(small())
    assert net.losses == ["rbm1_cd"]
    model = nngraph.compile(net, backend="reference", seed=0)
    assert set(model.evaluate({"x": binary(8, 6)})) == {"loss", "reconstruction_error",
                                                          "pseudo_log_likelihood"}


def test_training_improves_pseudo_likelihood():
    x = _digits()[:500]
    model = nngraph.compile(os.path.join(SPECS, "rbm_digits.yaml"), backend="cpu", seed=0)
    before = model.evaluate({"image": x})
    hist = model.fit({"image": x}, epochs=3, verbose=0)
    after = model.evaluate({"image": x})
    assert after["pseudo_log_likelihood"] > before["pseudo_log_likelihood"] + 10
    assert after["reconstruction_error"] < before["reconstruction_error"] / 2
    assert len(hist["pseudo_log_likelihood"]) == 3


@pytest.mark.parametrize("rbm", [{"k": 2}, {"persistent": True, "chains": 5, "k": 2}])
def test_cpu_backend_equals_reference(rbm, tmp_path):
    x = binary(20, 6)
    runs = {}
    for backend in ("reference", "cpu"):
        m = nngraph.compile(small(**rbm), backend=backend, seed=0, dtype="float64")
        losses = [m.train_step({"x": x[i:i + 5]}) for i in range(0, 20, 5)]
        runs[backend] = (losses, {k: v.copy() for k, v in m.params.items()},
                         m.evaluate({"x": x}), m.flat_state)
        m.save(str(tmp_path / f"{backend}.nnz"))
        again = nngraph.load_model(str(tmp_path / f"{backend}.nnz"))
        assert again.evaluate({"x": x}) == runs[backend][2]
    (l_r, p_r, e_r, s_r), (l_c, p_c, e_c, s_c) = runs["reference"], runs["cpu"]
    assert np.allclose(l_r, l_c, atol=1e-12)
    for k in p_r:
        assert np.allclose(p_r[k], p_c[k], atol=1e-12), k
    assert e_r == pytest.approx(e_c, abs=1e-12)
    assert set(s_r) == ({"rbm1_cd.chain"} if rbm.get("persistent") else set())
    for k in s_r:
        assert np.array_equal(s_r[k], s_c[k])


def test_dbn_pretrains_then_finetunes_and_starts_an_mlp(tmp_path):
    dbn = nngraph.compile(os.path.join(SPECS, "dbn_digits.yaml"), backend="cpu", seed=0)
    assert dbn.net.losses == ["rbm1_cd", "rbm2_cd", "xent"]
    x, y = load_dataset("digits")
    data = {"image": np.asarray(x[:400], np.float32), "label": y[:400]}
    start = {k: v.copy() for k, v in dbn.params.items()}
    dbn.fit(data, epochs=2, verbose=0)        # the first phase only: rbm1's CD
    assert not np.array_equal(dbn.params["rbm1.W"], start["rbm1.W"])
    assert np.array_equal(dbn.params["rbm2.W"], start["rbm2.W"])
    assert np.array_equal(dbn.params["logits.W"], start["logits.W"])
    report = dbn.evaluate(data)
    for key in ("rbm1_cd_pseudo_log_likelihood", "rbm2_cd_reconstruction_error",
                "xent_accuracy"):
        assert key in report
    path = str(tmp_path / "dbn.nnz")
    dbn.save(path)
    mlp_spec = {"nngraph": 1, "name": "mlp_from_dbn",
                "inputs": {"image": {"shape": [64]}, "label": {"shape": [], "dtype": "int64"}},
                "layers": [{"op": "dense", "name": "rbm1", "units": 64, "activation": "sigmoid"},
                           {"op": "dense", "name": "rbm2", "units": 32, "activation": "sigmoid"},
                           {"op": "dense", "name": "head", "units": 10}],
                "outputs": ["head"],
                "losses": [{"op": "softmax_cross_entropy", "in": ["head", "label"]}],
                "train": {"init_from": {"file": path}}}
    mlp = nngraph.compile(mlp_spec, backend="cpu", seed=0)
    assert mlp.loaded.loaded == ["rbm1", "rbm2"] and mlp.loaded.kept == ["head"]
    for k in ("rbm1.W", "rbm1.b", "rbm2.W", "rbm2.b"):
        assert np.array_equal(mlp.params[k], dbn.params[k])
    # the MLP's hidden layers compute what the DBN's rbm layers do
    feats = nngraph.compile({**mlp_spec, "outputs": ["rbm2"]}, backend="cpu", seed=0)
    dbn_feats = nngraph.compile({**nngraph.load(os.path.join(SPECS, "dbn_digits.yaml")).spec,
                                 "outputs": ["rbm2"]}, backend="cpu", seed=0)
    dbn_feats.load_weights(path)
    assert np.allclose(feats.predict({"image": data["image"]}),
                       dbn_feats.predict({"image": data["image"]}), atol=1e-6)


# ------------------------------------------------------------------------------- errors

def _error(spec) -> str:
    with pytest.raises(SpecError) as e:
        nngraph.load(spec)
    return str(e.value)


def test_errors_for_misuse():
    spec = {**SMALL, "inputs": {"x": {"shape": [2, 3]}}}
    msg = _error(spec)
    assert "E030" in msg and "flatten" in msg and "rbm1" in msg
    assert "use_bias" in _error(small(use_bias=False))
    assert "k" in _error(small(k=0))
    wrong = {**SMALL, "layers": [{"op": "dense", "name": "d", "units": 4}], "outputs": ["d"],
             "losses": [{"op": "contrastive_divergence", "in": ["x", "d"]}]}
    msg = _error(wrong)
    assert "E030" in msg and "rbm layer" in msg and "'d' is dense" in msg
    twice = {**SMALL, "layers": [SMALL["layers"][0],
                                 {"op": "dense", "name": "rbm1_cd", "in": "x", "units": 2}]}
    assert "E022" in _error(twice)
