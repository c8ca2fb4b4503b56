"""Metrics and per-loss reports: each loss by name, `metrics:` lists checked against
scikit-learn, their errors at `check`, early stopping on any of them, `eval --confusion`."""
import numpy as np
import pytest
from sklearn import metrics as sk

import nngraph
from nngraph import DataError, SpecError
from nngraph.cli import main

TWO_HEADS = """
nngraph: 1
name: two_heads
inputs:
  x: {shape: [6]}
  label: {shape: [], dtype: int64}
layers:
  - {op: dense, name: code, units: 8, activation: tanh}
  - {op: dense, name: decoded, units: 6, in: code}
  - {op: dense, name: logits, units: 4, in: code}
outputs: [decoded, logits]
losses:
  - {op: mse, name: recon_loss, in: [decoded, x], metrics: [mae, mse, rmse]}
  - {op: softmax_cross_entropy, name: class_loss, in: [logits, label], weight: 0.5,
     metrics: [accuracy, top_2_accuracy, precision, recall, f1, auc]}
train:
  optimizer: {type: adam, lr: 0.01}
  batch_size: 16
  epochs: 2
"""


def two_heads_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    label = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    return {"x": x.astype(np.float32), "label": label}


@pytest.fixture(scope="module")
def trained():
    model = nngraph.compile(TWO_HEADS, backend="reference", seed=0)
    history = model.fit(two_heads_data(), validation=two_heads_data(60, 1), verbose=0)
    return model, history


def test_every_loss_is_reported_by_name_with_its_metrics(trained):
    model, history = trained
    keys = ["loss", "recon_loss", "recon_mae", "recon_mse", "recon_rmse", "class_loss",
            "class_accuracy", "class_top_2_accuracy", "class_precision", "class_recall",
            "class_f1", "class_auc"]
    assert list(history) == keys + [f"val_{k}" for k in keys]
    assert all(len(v) == 2 for v in history.values())
    val = two_heads_data(60, 1)
    logs = model.evaluate(val)
    assert list(logs) == keys
    for k in keys:                               # the last epoch's held-out figures
        assert logs[k] == pytest.approx(history[f"val_{k}"][-1], rel=1e-6)
    # the total is the weighted sum (no regularizer here); each loss is unweighted
    assert logs["loss"] == pytest.approx(logs["recon_loss"] + 0.5 * logs["class_loss"])


def test_metrics_agree_with_scikit_learn(trained):
    model, _ = trained
    val = two_heads_data(60, 1)
    logs = model.evaluate(val, batch_size=7)     # gathered over batches, divided once
    out = model.predict(val)
    scores, y = out["logits"].astype(np.float64), val["label"]
    pred = scores.argmax(axis=1)
    prob = np.exp(scores - scores.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    assert logs["class_accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert logs["class_top_2_accuracy"] == pytest.approx(
        sk.top_k_accuracy_score(y, scores, k=2, labels=range(4)))
    for name, fn in (("precision", sk.precision_score), ("recall", sk.recall_score),
                     ("f1", sk.f1_score)):
        assert logs[f"class_{name}"] == pytest.approx(
            fn(y, pred, average="macro", zero_division=0)), name
    assert logs["class_auc"] == pytest.approx(
        sk.roc_auc_score(y, prob, multi_class="ovr", average="macro"))
    diff = out["decoded"].astype(np.float64) - val["x"]
    assert logs["recon_mae"] == pytest.approx(np.abs(diff).mean(), rel=1e-6)
    assert logs["recon_mse"] == pytest.approx((diff ** 2).mean(), rel=1e-6)
    assert logs["recon_rmse"] == pytest.approx(np.sqrt((diff ** 2).mean()), rel=1e-6)
    matrix, classes = model.confusion_matrices(val)["class_loss"]
    np.testing.assert_array_equal(matrix, sk.confusion_matrix(y, pred, labels=range(4)))
    assert classes == [0, 1, 2, 3]


BINARY = """
nngraph: 1
name: binary
inputs:
  x: {shape: [3]}
  t: {shape: [1]}
layers:
  - {op: dense, name: logit, units: 1}
outputs: [logit]
losses:
  - {op: sigmoid_cross_entropy, in: [logit, t]}
train:
  metrics: [accuracy, precision, recall, f1, auc, mae]
"""


def test_binary_metrics_of_the_positive_class_with_ties():
    model = nngraph.compile(BINARY, backend="reference", seed=3)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    x[10:20] = x[0]                              # tied scores count half in the auc
    t = (rng.random((50, 1)) < 0.4).astype(np.float32)
    logs = model.evaluate({"x": x, "t": t}, batch_size=16)
    assert list(logs) == ["loss", "accuracy", "precision", "recall", "f1", "auc", "mae"]
    s = model.predict({"x": x}).astype(np.float64).ravel()
    y, pred = t.ravel().astype(int), (s > 0).astype(int)
    assert logs["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert logs["precision"] == pytest.approx(sk.precision_score(y, pred, zero_division=0))
    assert logs["recall"] == pytest.approx(sk.recall_score(y, pred, zero_division=0))
    assert logs["f1"] == pytest.approx(sk.f1_score(y, pred, zero_division=0))
    assert logs["auc"] == pytest.approx(sk.roc_auc_score(y, s))
    assert logs["mae"] == pytest.approx(np.abs(1 / (1 + np.exp(-s)) - y).mean(), rel=1e-5)


def test_accuracy_asked_of_real_valued_targets_is_an_error_that_says_why():
    spec = TWO_HEADS.replace("metrics: [mae, mse, rmse]", "metrics: [accuracy]")
    model = nngraph.compile(spec, backend="reference")
    with pytest.raises(DataError, match="recon_loss.*not 0/1.*mae, mse, rmse"):
        model.evaluate(two_heads_data())


def test_one_loss_reports_bare_names_and_the_autoencoder_no_accuracy():
    spec = TWO_HEADS.split("losses:")[0].replace("outputs: [decoded, logits]",
                                                 "outputs: [logits]")
    spec = spec.replace("  - {op: dense, name: decoded, units: 6, in: code}\n", "")
    model = nngraph.compile(spec + "losses:\n  - {op: softmax_cross_entropy, name: xent, "
                            "in: [logits, label]}\n", backend="reference")
    assert list(model.evaluate(two_heads_data())) == ["loss", "accuracy"]


def check_errors(spec) -> list[str]:
    with pytest.raises(SpecError) as e:
        nngraph.load(spec)
    return [str(d) for d in e.value.diagnostics]


def test_metric_mistakes_are_found_by_check_where_they_are_written():
    errors = check_errors(TWO_HEADS.replace("metrics: [mae, mse, rmse]",
                                            "metrics: [mae, Accuracy, recal]"))
    assert len(errors) == 1 and ":13:" in errors[0]
    assert ("unknown metrics 'Accuracy' (did you mean 'accuracy'?), 'recal' (did you mean "
            "'recall'?)") in errors[0]
    errors = check_errors(TWO_HEADS.replace("top_2_accuracy, precision", "mae, precision"))
    assert len(errors) == 1 and ":15:15:" in errors[0]     # the metrics: it is in
    assert "metric 'mae' does not apply to loss 'class_loss'" in errors[0]
    assert "accuracy, top_k_accuracy" in errors[0]
    sparse = TWO_HEADS.replace("  - {op: mse, name: recon_loss, in: [decoded, x], metrics: "
                               "[mae, mse, rmse]}",
                               "  - {op: kl_sparsity, name: sparsity, in: code, metrics: [f1]}")
    errors = check_errors(sparse.replace("activation: tanh", "activation: sigmoid"))
    assert len(errors) == 1 and "no target to compare with" in errors[0]
    errors = check_errors(BINARY.replace("mae]", "top_k_accuracy]"))
    assert len(errors) == 1 and "train.metrics" not in errors[0]
    assert "'top_5_accuracy' applies to none of the losses" in errors[0]
    assert "binary" not in errors[0] and "loss_1: accuracy" in errors[0]


def test_early_stopping_monitors_any_reported_key():
    spec = TWO_HEADS + "  early_stopping: {monitor: val_class_f1, patience: 1}\n"
    model = nngraph.compile(spec, backend="reference")
    assert model.net.train["early_stopping"]["monitor"] == "val_class_f1"
    errors = check_errors(spec.replace("val_class_f1", "val_class_f"))
    assert len(errors) == 1 and "(did you mean 'val_class_f1'?)" in errors[0]
    assert "val_recon_mae" in errors[0]
    # a metric to maximize: training stops when it has not risen for `patience` epochs
    model = nngraph.compile(spec.replace("epochs: 2", "epochs: 40")
                            .replace("lr: 0.01", "lr: 1.0e-12"), backend="reference")
    history = model.fit(two_heads_data(), validation=two_heads_data(60, 1), verbose=0)
    assert len(history["loss"]) == 2     # f1 cannot rise at lr 1e-12: one epoch more, then stop


def test_eval_confusion_prints_a_matrix_of_every_sample(tmp_path, capsys):
    spec = tmp_path / "two_heads.yaml"
    spec.write_text(TWO_HEADS)
    data = tmp_path / "d.npz"
    np.savez(data, **two_heads_data())
    model = str(tmp_path / "m.nnz")
    nngraph.compile(str(spec), backend="reference").save(model)
    capsys.readouterr()
    assert main(["eval", model, "--data", str(data), "--confusion", "--backend",
                 "reference"]) == 0
    out = capsys.readouterr().out
    assert "class_f1" in out and "recon_rmse" in out
    table = out.split("confusion matrix of loss 'class_loss' (rows: true class, columns: "
                      "predicted)\n")[1].splitlines()
    assert table[0].split() == ["0", "1", "2", "3", "recall"]
    counts = np.array([[int(v) for v in row.split()[1:5]] for row in table[1:5]])
    assert counts.sum() == 120
    np.testing.assert_array_equal(counts.sum(axis=1),
                                  np.bincount(two_heads_data()["label"], minlength=4))


def test_which_keys_are_better_higher():
    from nngraph.metrics import higher_is_better
    assert all(map(higher_is_better, ["accuracy", "val_class_f1", "auc", "top_3_accuracy",
                                      "val_x_precision", "recall"]))
    assert not any(map(higher_is_better, ["loss", "val_recon_mae", "class_loss", "rmse"]))
