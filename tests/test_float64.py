"""compile(..., dtype="float64") computes everything in float64, float inputs included:
predictions, losses, gradients and an SGD step of small convolutional, recurrent and
batch-normalized networks agree with PyTorch in float64 to 1e-12 (relative to the largest
value), on the reference and the CPU backend. Float64 data reaches the model uncut (it was
once fitted to the spec's float32 first: 3.6e-8 off), and everything the user sees says
float64: error messages, outputs, saved files, frozen copies, the summary."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import _VF

import nngraph
from nngraph import DataError
from nngraph.batch import as_batch
from nngraph.data import load_training_data

RTOL = 1e-12
BACKENDS = ["reference", "cpu"]
N = 5
LR = 0.1
SGD = {"optimizer": {"type": "sgd", "lr": LR}}

CNN = {"nngraph": 1, "name": "cnn64",
       "inputs": {"image": {"shape": [2, 6, 6]}, "label": {"shape": [], "dtype": "int64"}},
       "layers": [
           {"op": "conv2d", "name": "c1", "filters": 3, "kernel": 3, "padding": "same"},
           {"op": "conv2d", "name": "c2", "filters": 3, "kernel": 3, "padding": "same"},
           {"op": "add", "name": "sum", "in": ["c1", "c2"], "activation": "tanh"},
           {"op": "maxpool2d", "name": "pool", "size": 2},
           {"op": "flatten", "name": "flat"},
           {"op": "dense", "name": "logits", "units": 4}],
       "outputs": ["logits"],
       "losses": [{"op": "softmax_cross_entropy", "in": ["logits", "label"]}],
       "train": SGD}

LSTM = {"nngraph": 1, "name": "lstm64",
        "inputs": {"series": {"shape": [4, 2]}, "mean": {"shape": [1]}},
        "layers": [{"op": "lstm", "name": "lstm", "units": 3},
                   {"op": "dense", "name": "prediction", "units": 1}],
        "outputs": ["prediction"],
        "losses": [{"op": "squared_error", "in": ["prediction", "mean"]}],
        "train": SGD}

_rows = np.random.default_rng(7).normal(size=(8, 4)).round(3)
BN = {"nngraph": 1, "name": "bn64",
      "inputs": {"x": {"shape": [4]}, "label": {"shape": [], "dtype": "int64"}},
      "layers": [{"op": "dense", "name": "h", "units": 5, "use_bias": False},  # beta biases
                 {"op": "batchnorm", "name": "bn", "activation": "relu"},
                 {"op": "dense", "name": "logits", "units": 3}],
      "outputs": ["logits"],
      "losses": [{"op": "softmax_cross_entropy", "in": ["logits", "label"]}],
      # decimals such as 0.123 are not float32 numbers: fit must not round them
      "train": {**SGD, "batch_size": 8, "epochs": 1,
                "data": {"inline": {"x": _rows.tolist(), "label": [0, 1, 2, 0, 1, 2, 0, 1]}}}}


# ---------------------------------------------------------------- the same in PyTorch

def torch_cnn(P, x, stats=None, training=False):
    c1 = F.conv2d(x, P["c1.W"], P["c1.b"], padding=1)
    c2 = F.conv2d(c1, P["c2.W"], P["c2.b"], padding=1)
    h = F.max_pool2d(torch.tanh(c1 + c2), 2).reshape(len(x), -1)
    return h @ P["logits.W"] + P["logits.b"]


def torch_lstm(P, x, stats=None, training=False):
    h = x.new_zeros(len(x), 3)
    state = (h, h)
    for t in range(x.shape[1]):
        state = _VF.lstm_cell(x[:, t], state, P["lstm.W"].T, P["lstm.U"].T, P["lstm.b"], None)
    return state[0] @ P["prediction.W"] + P["prediction.b"]


def torch_bn(P, x, stats, training=False):
    """stats: {'bn.running_mean': tensor, ...}, moved in place when training (PyTorch's
    momentum 0.1 is nngraph's 0.9: running = 0.9 running + 0.1 batch)."""
    h = F.batch_norm(x @ P["h.W"], stats["bn.running_mean"], stats["bn.running_var"], P["bn.gamma"],
                     P["bn.beta"], training=training, momentum=0.1, eps=1e-5)
    return torch.relu(h) @ P["logits.W"] + P["logits.b"]


def cross_entropy(out, y):
    return F.cross_entropy(out, y)


def half_squared_error(out, t):
    return 0.5 * ((out - t) ** 2).sum() / len(out)


NETS = {"cnn": (CNN, torch_cnn, cross_entropy), "lstm": (LSTM, torch_lstm, half_squared_error),
        "bn": (BN, torch_bn, cross_entropy)}


def batch_for(name, n=N, seed=0):
    rng = np.random.default_rng(seed)
    if name == "cnn":
        return {"image": rng.normal(size=(n, 2, 6, 6)), "label": rng.integers(0, 4, n)}
    if name == "lstm":
        return {"series": rng.normal(size=(n, 4, 2)), "mean": rng.normal(size=(n, 1))}
    return {"x": rng.normal(size=(n, 4)), "label": rng.integers(0, 3, n)}


# ---------------------------------------------------------------- models, compiled once

_MODELS: dict = {}


def model_for(name, backend):
    """The float64 model of network `name` on `backend`, its parameters random (biases and
    batchnorm's gamma and beta included, so that none is a special value)."""
    if (name, backend) not in _MODELS:
        model = nngraph.compile(NETS[name][0], backend=backend, seed=3, dtype="float64")
        rng = np.random.default_rng(11)
        for v in model.params.values():
            v[...] = rng.normal(0, 0.5, v.shape)
        _MODELS[name, backend] = model
    return _MODELS[name, backend]


def rel(got, want) -> float:
    got, want = np.asarray(got), np.asarray(want, np.float64)
    assert got.dtype == np.float64, got.dtype
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-300))


def check(what, got, want, rtol=RTOL):
    r = rel(got, want)
    print(f"{what}: max relative difference {r:.2e}")
    assert r <= rtol, (what, r)


def torch_tensors(arrays: dict, grad=False) -> dict:
    return {k: torch.tensor(np.array(v, np.float64), requires_grad=grad)
            for k, v in arrays.items()}


def _data(batch):
    """(x, target) of a batch as torch tensors: the float features and the label input."""
    x, t = batch.values()
    return torch.tensor(x), torch.tensor(t)


# ---------------------------------------------------------------- against PyTorch

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(NETS))
def test_float64_matches_pytorch(name, backend):
    _, forward, loss_of = NETS[name]
    model = model_for(name, backend)
    batch = batch_for(name)
    x, t = _data(batch)
    what = f"{name} {backend}"

    # predict and evaluate: evaluation mode (batchnorm's running statistics)
    stats = torch_tensors(model.flat_state)
    P = torch_tensors(model.params, grad=True)
    with torch.no_grad():
        out = forward(P, x, stats)
        loss = loss_of(out, t)
    y = model.predict({k: v for k, v in batch.items() if k in model.net.feature_inputs})
    check(f"{what} predict", y, out.numpy())
    assert model.evaluate(batch)["loss"] == pytest.approx(loss.item(), rel=RTOL, abs=0)

    # gradients: training mode, parameters and running statistics unchanged
    before = {k: v.copy() for k, v in model.params.items()}
    train_stats = torch_tensors(model.flat_state)
    loss = loss_of(forward(P, x, train_stats, training=True), t)
    loss.backward()
    grads = model.gradients(batch)
    assert set(grads) == set(P)
    for k in P:
        check(f"{what} gradient {k}", grads[k], P[k].grad.numpy())
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
    for k, v in model.flat_state.items():
        np.testing.assert_array_equal(v, stats[k].numpy())

    # one SGD step: the loss before it, the parameters and running statistics after it
    assert model.train_step(batch) == pytest.approx(loss.item(), rel=RTOL, abs=0)
    for k in P:
        check(f"{what} updated {k}", model.params[k], before[k] - LR * P[k].grad.numpy())
    for k in train_stats:
        check(f"{what} {k}", model.flat_state[k], train_stats[k].numpy())


# ---------------------------------------------------------------- what the user sees

def test_the_model_s_network_declares_its_float_inputs_in_float64():
    net = nngraph.load(CNN)
    model = nngraph.compile(net, backend="reference", dtype="float64")
    assert net.inputs["image"].dtype == "float32"            # the spec's network is untouched
    assert model.net.inputs["image"].dtype == "float64"
    assert model.net.inputs["label"].dtype == "int64"        # integer inputs keep theirs
    assert model.net.node("c1")["dtype"] == "float64" and net.node("c1")["dtype"] == "float32"
    batch = as_batch(model.net, {"image": np.zeros((2, 2, 6, 6), np.float32),
                                 "label": np.array([1, 2], np.int32)})
    assert batch["image"].dtype == np.float64 and batch["label"].dtype == np.int64
    with pytest.raises(DataError, match=r"expected an array of shape \(N, 2, 6, 6\) float64"):
        model.predict(np.zeros((2, 3, 6, 6)))
    with pytest.raises(DataError, match=r"expected whole numbers \(int64\)"):
        model.gradients({"image": np.zeros((2, 2, 6, 6)), "label": np.array([0.5, 1.0])})
    x = np.zeros((2, 2, 6, 6))
    x[1, 0, 2, 3] = np.nan
    with pytest.raises(DataError, match=r"expected finite float64 values, got 1 NaN \(the "
                                        r"first in sample 1 of \(2, 2, 6, 6\) float64\)"):
        model.predict(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_data_is_not_rounded_to_float32(backend):
    """The same values rounded to float32 give other gradients: the model saw them whole."""
    model = model_for("cnn", backend)
    batch = batch_for("cnn", seed=5)
    rounded = {**batch, "image": batch["image"].astype(np.float32).astype(np.float64)}
    exact, cut = model.gradients(batch), model.gradients(rounded)
    assert max(rel(exact[k], cut[k]) for k in exact) > 1e-9
    y = model.predict(batch["image"])
    assert y.dtype == np.float64
    np.testing.assert_array_equal(model.predict(batch["image"]), y)     # a repeat: as fast
    assert model.predict(batch["image"].astype(np.float32)).dtype == np.float64
    bad = batch["image"].copy()
    bad[2, 1, 0, 0] = np.inf            # the CPU kernels notice it on the way, then say where
    with pytest.raises(DataError, match=r"expected finite float64 values, got 1 infinite "
                                        r"\(the first in sample 2 of \(5, 2, 6, 6\) float64"):
        model.predict(bad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_on_the_spec_s_data_runs_in_float64(backend):
    model = nngraph.compile(BN, backend=backend, seed=3, dtype="float64")
    train, _ = load_training_data(model.net)
    assert train["x"].dtype == np.float64 and train["label"].dtype == np.int64
    np.testing.assert_array_equal(train["x"], _rows)            # 0.123 stays 0.123
    P = torch_tensors(model.params, grad=True)
    stats = torch_tensors(model.flat_state)
    loss = cross_entropy(torch_bn(P, torch.tensor(_rows), stats, training=True),
                         torch.tensor(train["label"]))
    loss.backward()
    before = {k: v.copy() for k, v in model.params.items()}
    hist = model.fit(shuffle=False, verbose=0)                  # one full-batch step
    assert hist["loss"][0] == pytest.approx(loss.item(), rel=RTOL, abs=0)
    for k in P:
        check(f"bn {backend} fit {k}", model.params[k], before[k] - LR * P[k].grad.numpy())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_saved_float64_model_reloads_as_float64(tmp_path, backend):
    model = model_for("lstm", backend)
    x = batch_for("lstm", seed=2)["series"]
    path = str(tmp_path / "lstm64.nnz")
    model.save(path)
    again = nngraph.load_model(path)
    assert again.dtype == np.float64 and again.backend == backend
    assert again.net.inputs["series"].dtype == "float64"
    assert all(v.dtype == np.float64 for v in again.params.values())
    for k, v in model.params.items():
        np.testing.assert_array_equal(again.params[k], v)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frozen_float64_model_predicts_in_float64(backend):
    model = model_for("cnn", backend)
    frozen = model.freeze()
    x = batch_for("cnn", seed=4)["image"]
    assert frozen.dtype == np.float64 and frozen.net.inputs["image"].dtype == "float64"
    assert all(v.dtype == np.float64 for v in frozen.params.values())
    got = frozen.predict(x)
    assert got.dtype == np.float64
    check(f"cnn {backend} frozen predict", got, model.predict(x))
    with pytest.raises(DataError, match=r"\(N, 2, 6, 6\) float64"):
        frozen.predict(np.zeros((1, 5)))


def test_the_summary_counts_float64_bytes():
    net = nngraph.load(CNN)
    model = nngraph.compile(net, backend="reference", dtype="float64")
    params = net.num_params
    assert f"{params * 4:,} B" in net.summary() and "float64" not in net.summary()
    text = model.net.summary()
    assert f"{params * 8:,} B" in text and "float64" in text
    assert f"{2 * 6 * 6 * 8:,} B" in text.splitlines()[4]        # the image row


# ---------------------------------------------------------------- what stays as it was

def test_float32_models_are_unchanged():
    net = nngraph.load(CNN)
    model = nngraph.compile(net, backend="reference", dtype="float32")
    assert model.net is net
    x = batch_for("cnn")["image"]
    assert model.predict(x).dtype == np.float32
    np.testing.assert_array_equal(model.predict(x), model.predict(x.astype(np.float32)))
    with pytest.raises(DataError, match=r"\(N, 2, 6, 6\) float32"):
        model.predict(np.zeros((2, 3, 6, 6)))


def test_the_model_s_dtype_governs_a_float_dtype_declared_on_an_input():
    """`dtype: float64` on an input of a float32 model is fitted to float32 (and refused by
    name where it would overflow); `dtype: float32` on one of a float64 model is float64."""
    wide = {**CNN, "inputs": {**CNN["inputs"], "image": {"shape": [2, 6, 6], "dtype": "float64"}}}
    model = nngraph.compile(wide, backend="reference", dtype="float32")
    assert model.net.inputs["image"].dtype == "float32"
    assert model.predict(batch_for("cnn")["image"]).dtype == np.float32
    with pytest.raises(DataError, match="overflow float32"):
        model.predict(np.full((1, 2, 6, 6), 1e300))
    narrow = {**CNN, "inputs": {**CNN["inputs"], "image": {"shape": [2, 6, 6],
                                                           "dtype": "float32"}}}
    model = nngraph.compile(narrow, backend="reference", dtype="float64")
    assert model.net.inputs["image"].dtype == "float64"
    x = batch_for("cnn")["image"]
    plain = nngraph.compile(CNN, backend="reference", dtype="float64")
    np.testing.assert_array_equal(model.predict(x), plain.predict(x))
