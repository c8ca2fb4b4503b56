"""The training runtime on the reference backend: optimizers against PyTorch, resume,
NaN handling, regularization, frozen parameters, early stopping, saving."""
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

import nngraph
from nngraph import DataError, ModelFileError, TrainingError
from nngraph.ir import Grad, Vjp

MLP = """
nngraph: 1
name: tiny
inputs:
  x: {shape: [4]}
  y: {shape: [], dtype: int64}
layers:
  - {op: dense, name: h, units: 5, activation: tanh}
  - {op: dropout, rate: 0.2}
  - {op: dense, name: out, units: 3}
outputs: [out]
losses:
  - {op: softmax_cross_entropy, in: [out, y]}
train:
  optimizer: OPT
  batch_size: 8
  epochs: 3
"""


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return {"x": x, "y": y}


def tiny(opt="{type: sgd, lr: 0.1}", dropout=True, backend="reference", **kw):
    text = MLP.replace("OPT", opt)
    if not dropout:
        text = text.replace("  - {op: dropout, rate: 0.2}\n", "")
    return nngraph.compile(text, backend=backend, **kw)


BACKENDS = pytest.mark.parametrize("backend", ["reference", "cpu"])


@pytest.mark.parametrize("opt,make", [
    ("{type: sgd, lr: 0.1}", lambda p: torch.optim.SGD(p, lr=0.1)),
    ("{type: sgd, lr: 0.1, momentum: 0.9}", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("{type: sgd, lr: 0.1, momentum: 0.9, nesterov: true}",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    ("{type: rmsprop, lr: 0.01, rho: 0.9, eps: 1e-7}",
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7)),
    ("{type: adagrad, lr: 0.1, eps: 1e-7}",
     lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-7)),
    ("{type: adam, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-7}",
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-7)),
])
@BACKENDS
def test_optimizers_match_pytorch(opt, make, backend):
    model = tiny(opt, dropout=False, dtype="float64", backend=backend)
    w = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in model.params.items()}
    optim = make(list(w.values()))
    d = data(16)
    for step in range(4):
        batch = {k: v[step * 4:(step + 1) * 4] for k, v in d.items()}
        ours = model.train_step(batch)
        x = torch.tensor(batch["x"], dtype=torch.float64)
        logits = torch.tanh(x @ w["h.W"] + w["h.b"]) @ w["out.W"] + w["out.b"]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(batch["y"]))
        assert ours == pytest.approx(loss.item(), rel=1e-10)
        optim.zero_grad()
        loss.backward()
        optim.step()
    for k, v in w.items():
        np.testing.assert_allclose(model.params[k], v.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_gradients_match_finite_differences_through_a_whole_network():
    model = tiny(dropout=False, dtype="float64")
    batch = {k: v[:6] for k, v in data().items()}
    grads = model.gradients(batch)
    w = model.params["h.W"]
    eps = 1e-6
    for idx in [(0, 0), (3, 4), (2, 1)]:
        old = w[idx]
        w[idx] = old + eps
        hi = model.evaluate(batch)["loss"]
        w[idx] = old - eps
        lo = model.evaluate(batch)["loss"]
        w[idx] = old
        assert grads["h.W"][idx] == pytest.approx((hi - lo) / (2 * eps), rel=1e-6)


@BACKENDS
def test_frozen_parameters_get_no_gradient_and_do_not_move(backend):
    text = MLP.replace("OPT", "{type: sgd, lr: 0.1}").replace(
        "units: 5, activation: tanh}", "units: 5, activation: tanh, trainable: false}").replace(
        "name: out, units: 3}", "name: out, units: 3, lr_mult: {b: 0}}")
    model = nngraph.compile(text, backend=backend)
    before = {k: v.copy() for k, v in model.params.items()}
    assert set(model.gradients(data())) == {"out.W"}
    assert Vjp("h") not in model.program.graph and Grad("h") not in model.program.graph
    model.fit(data(), epochs=1, verbose=0)
    assert np.array_equal(model.params["h.W"], before["h.W"])
    assert np.array_equal(model.params["out.b"], before["out.b"])
    assert not np.array_equal(model.params["out.W"], before["out.W"])


@BACKENDS
def test_l2_penalty_and_max_norm(backend):
    text = MLP.replace("OPT", "{type: sgd, lr: 0.5}").replace(
        "name: out, units: 3}", "name: out, units: 3, regularizer: {l2: 0.01, max_norm: 0.5}}")
    text = text.replace("  - {op: dropout, rate: 0.2}\n", "")
    model = nngraph.compile(text, backend=backend, dtype="float64")
    batch = data(8)
    plain = model.evaluate(batch)["loss"]
    w = model.params["out.W"].copy()
    unpenalized = plain - 0.01 * float((w * w).sum())
    g = model.gradients(batch)["out.W"]
    model.train_step(batch)
    norms = np.sqrt((model.params["out.W"] ** 2).sum(axis=0))
    assert np.all(norms <= 0.5 + 1e-12)
    assert unpenalized < plain
    # the l2 term's gradient 2·l2·W is part of the gradient
    text_no = text.replace("regularizer: {l2: 0.01, max_norm: 0.5}", "use_bias: true")
    ref = nngraph.compile(text_no, backend=backend, dtype="float64")
    np.testing.assert_allclose(g - ref.gradients(batch)["out.W"], 0.02 * w, atol=1e-12)


@BACKENDS
def test_resume_gives_the_same_result_as_never_stopping(tmp_path, backend):
    d = data(40)
    straight = tiny("{type: adam, lr: 0.01}", backend=backend)
    straight.fit(d, epochs=4, verbose=0)
    first = tiny("{type: adam, lr: 0.01}", backend=backend)
    first.fit(d, epochs=2, verbose=0, checkpoint=str(tmp_path / "m.nnz"))
    resumed = nngraph.load_model(str(tmp_path / "m.nnz"))
    assert resumed.epoch == 2 and resumed.step == first.step
    resumed.fit(d, epochs=2, verbose=0)
    for k in straight.params:
        np.testing.assert_array_equal(straight.params[k], resumed.params[k])
    assert straight.history["loss"] == resumed.history["loss"]


def test_saved_model_predicts_the_same(tmp_path):
    model = tiny()
    model.fit(data(), epochs=1, verbose=0)
    path = str(tmp_path / "t.nnz")
    model.save(path)
    again = nngraph.load_model(path)
    x = data(5, seed=3)["x"]
    np.testing.assert_array_equal(model.predict(x), again.predict(x))


def test_nan_loss_stops_training_and_keeps_the_checkpoint(tmp_path):
    ckpt = tmp_path / "c.nnz"
    tiny().save(str(ckpt))
    before = ckpt.read_bytes()
    model = tiny("{type: sgd, lr: 1e38}", dropout=False)
    with pytest.raises(TrainingError) as e:
        model.fit(data(), epochs=5, verbose=0, checkpoint=str(ckpt))
    msg = str(e.value)
    assert "the loss became" in msg and "epoch 1, batch" in msg
    assert "that update was not applied" in msg
    assert model.epoch == 0 and ckpt.read_bytes() == before


def test_early_stopping_stops():
    model = tiny("{type: sgd, lr: 1e-12}")        # nothing improves measurably
    d = data()
    hist = model.fit(d, epochs=20, verbose=0, validation=d,
                     early_stopping={"patience": 2, "monitor": "val_loss", "min_delta": 1e-3})
    assert len(hist["loss"]) == 3


def test_progress_bar_prints_keras_style_lines(capsys):
    model = tiny()
    model.fit(data(), epochs=2, verbose=1, validation=data(16, seed=1))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and out[2] == "Epoch 2/2"
    assert out[1].startswith("5/5 [==============================] - ")
    assert " - loss: " in out[1] and " - accuracy: " in out[1] and " - val_loss: " in out[1]


def test_wrong_data_is_a_data_error_naming_the_input():
    model = tiny()
    with pytest.raises(DataError, match="x"):
        model.train_step({"x": np.zeros((4, 5), np.float32), "y": np.zeros(4, np.int64)})
    with pytest.raises(DataError, match="y"):
        model.train_step({"x": np.zeros((4, 4), np.float32)})


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.nnz"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="bad.nnz"):
        nngraph.load_model(str(path))


def test_dtype_float64_runs_in_float64():
    model = tiny(dtype="float64")
    assert all(v.dtype == np.float64 for v in model.params.values())
    assert model.predict(data()["x"]).dtype == np.float64


def test_checkpoints_come_on_a_time_interval_and_at_the_end(tmp_path, monkeypatch):
    """Thousands of quick epochs write the checkpoint at the end (and every CHECKPOINT_S
    seconds), not after each epoch; with an interval of 0 every epoch is saved."""
    from nngraph import training
    spec = os.path.join(os.path.dirname(__file__), "..", "specs", "xor_mlp.yaml")
    model = nngraph.compile(spec, backend="reference", seed=0)
    saves = []
    real = model.save
    monkeypatch.setattr(model, "save", lambda path: (saves.append(model.epoch), real(path)))
    model.fit(epochs=200, verbose=0, checkpoint=str(tmp_path / "m.nnz"))
    assert saves == [200]
    assert nngraph.load_model(str(tmp_path / "m.nnz")).epoch == 200
    monkeypatch.setattr(training, "CHECKPOINT_S", 0.0)
    saves.clear()
    model.fit(epochs=3, verbose=0, checkpoint=str(tmp_path / "m.nnz"))
    assert saves == [201, 202, 203]


def test_many_epochs_print_about_fifty_lines(capsys):
    from nngraph import training
    spec = os.path.join(os.path.dirname(__file__), "..", "specs", "xor_mlp.yaml")
    model = nngraph.compile(spec, backend="reference", seed=0)
    model.fit(epochs=1000, verbose=1)
    epochs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch ")]
    assert training.LINES <= len(epochs) <= training.LINES + 2
    assert epochs[0] == "Epoch 1/1000" and epochs[-1] == "Epoch 1000/1000"


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="posix signals")
def test_ctrl_c_saves_the_last_whole_epoch_and_stops(tmp_path):
    """The first Ctrl-C ends training after the epoch under way and saves it: the file
    holds whole epochs, so resuming from it stays exact."""
    out = tmp_path / "xor.nnz"
    spec = os.path.join(os.path.dirname(__file__), "..", "specs", "xor_mlp.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "nngraph", "train", spec, "--epochs",
                             "10000000", "--backend", "reference", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:                    # training is under way
            if line.startswith("Epoch 1/"):
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, rest
    assert "interrupted: saved" in rest
    epoch = nngraph.load_model(str(out)).epoch
    assert 0 < epoch < 10000000
    assert f"after epoch {epoch}" in rest


def test_accuracy_only_where_a_loss_compares_with_labels():
    """An autoencoder's cross-entropy on its own pixels reported an 'accuracy'; only a loss
    whose target is a label input (read by losses alone) gives one."""
    ae = nngraph.compile(os.path.join(os.path.dirname(__file__), "..", "specs",
                                      "autoencoder.yaml"), backend="reference", seed=0)
    x = np.random.default_rng(0).integers(0, 2, (8,) + tuple(ae.net.inputs[   # 0/1
        ae.net.feature_inputs[0]].shape)).astype(np.float32)   # pixels, as in the report
    assert "accuracy" not in ae.evaluate({ae.net.feature_inputs[0]: x})
    xor = nngraph.compile(os.path.join(os.path.dirname(__file__), "..", "specs",
                                       "xor_mlp.yaml"), backend="reference", seed=0)
    history = xor.fit(epochs=2, verbose=0)
    assert "accuracy" in history


COLLAPSE = """
nngraph: 1
name: collapse
inputs:
  image: {shape: [64]}
layers:
  - {op: dense, name: code, units: 16, activation: relu}
  - {op: dense, name: decoded, units: 64, activation: sigmoid}
outputs: [decoded]
losses:
  - {op: squared_error, in: [decoded, image]}
train:
  optimizer: {type: sgd, lr: LR}
  batch_size: 32
  epochs: 2
  data: {dataset: digits}
"""


@BACKENDS
def test_sigmoid_outputs_stuck_at_0_or_1_are_warned_of_once(backend):
    """The collapse of an autoencoder to black images: a half-sum squared error on 64
    sigmoid outputs at a high learning rate drives every output to 0 or 1, where nothing
    learns; fit says so once, with the way out. A sane learning rate hears nothing."""
    with pytest.warns(nngraph.TrainingWarning) as caught:
        nngraph.compile(COLLAPSE.replace("LR", "50"), backend=backend).fit(verbose=0)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "sigmoid outputs of 'decoded'" in message and "sigmoid_cross_entropy" in message
    assert "64 values" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error", nngraph.TrainingWarning)
        nngraph.compile(COLLAPSE.replace("LR", "0.05"), backend=backend).fit(verbose=0)


def test_a_loss_that_grows_is_warned_of():
    # lr 100 grows the loss 16-30 times over the first batch's whatever dropout draws (lr 30
    # grew it 4-10 times, across the threshold or not by the seed)
    spec = MLP.replace("OPT", "{type: sgd, lr: 100.0}").replace("epochs: 3", "epochs: 2")
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 4)) * 30).astype(np.float32)
    with pytest.warns(nngraph.TrainingWarning, match=r"the loss rose from .* learning rate "
                                                     r"\(100\) is likely too high"):
        nngraph.compile(spec, backend="reference").fit({"x": x, "y": (x[:, 0] > 0) * 2},
                                                       verbose=0)


def test_the_spec_s_train_seed_and_shuffle_are_what_fit_uses():
    """train.seed seeds the parameters and the batch order like compile(seed=..) does, and
    train.shuffle: false keeps the samples' order (batches then see the same samples
    every epoch)."""
    seeded = MLP.replace("OPT", "{type: sgd, lr: 0.1}") + "  seed: 7\n"
    a = nngraph.compile(seeded, backend="reference")
    b = nngraph.compile(MLP.replace("OPT", "{type: sgd, lr: 0.1}"), backend="reference", seed=7)
    assert a.seed == 7
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    a.fit(data(), verbose=0), b.fit(data(), verbose=0)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    kept = nngraph.compile(seeded.replace("  - {op: dropout, rate: 0.2}\n", "")
                           + "  shuffle: false\n", backend="reference")
    by_hand = nngraph.compile(seeded.replace("  - {op: dropout, rate: 0.2}\n", ""),
                              backend="reference")
    kept.fit(data(), verbose=0)
    by_hand.fit(data(), verbose=0, shuffle=False)
    for k in kept.params:
        np.testing.assert_array_equal(kept.params[k], by_hand.params[k])
    shuffled = nngraph.compile(seeded.replace("  - {op: dropout, rate: 0.2}\n", ""),
                               backend="reference")
    shuffled.fit(data(), verbose=0)
    assert not np.array_equal(shuffled.params["out.W"], kept.params["out.W"])


def test_a_spinner_redraws_a_terminal_line_and_prints_once_elsewhere():
    import io
    from nngraph.progress import Spinner

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, live in ((Terminal(), True), (io.StringIO(), False)):
        with Spinner("compiling x", stream=stream) as spinner:
            time.sleep(0.6)
            spinner.done("3 kernels in 0.6 s")
        text = stream.getvalue()
        assert text.endswith("compiling x ...\033[K 3 kernels in 0.6 s\n" if live
                             else "compiling x ... 3 kernels in 0.6 s\n")
        assert (text.count("\r") >= 2) == live
    stream = io.StringIO()
    with pytest.raises(ValueError):
        with Spinner("compiling x", stream=stream):
            raise ValueError
    assert stream.getvalue() == "compiling x ... failed\n"


@BACKENDS
def test_every_loss_counts_in_the_training_loss(backend):
    """A loss whose prediction gets no gradient (it compares two network inputs) still adds
    to the loss a training step reports, as it does to evaluate's."""
    spec = """
nngraph: 1
name: two_losses
inputs:
  x: {shape: [3]}
  y: {shape: [3]}
layers:
  - {op: dense, name: out, units: 3}
outputs: [out]
losses:
  - {op: mse, name: fit, in: [out, y]}
  - {op: mse, name: inputs_apart, in: [x, y], weight: 2.0}
"""
    model = nngraph.compile(spec, backend=backend)
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(8, 3)), "y": rng.normal(size=(8, 3))}
    before = model.evaluate(batch)
    assert before["inputs_apart"] > 0.5
    assert model.train_step(batch) == pytest.approx(before["loss"], rel=1e-5)
