"""Starting from another model's parameters (nngraph/weights.py): Model.load_weights, the
spec's train.init_from, `nngraph train --weights` and `nngraph summary --weights`. Matched
by layer name; layers the file lacks or that are skipped keep their initial values; a layer
of other shapes is an error naming it and both shapes, and then nothing is copied."""
import numpy as np
import pytest

import nngraph
from nngraph import cli
from nngraph.errors import NNGraphError, SpecError

BASE = """\
nngraph: 1
name: base
inputs:
  x: {shape: [4]}
  y: {shape: [], dtype: int64}
layers:
  - {op: dense, name: hidden, units: 6, activation: tanh}
  - {op: batchnorm, name: norm}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, y]}
train:
  optimizer: {type: sgd, lr: 0.1}
  data: {dataset: iris}
"""

# The same trunk, frozen, under a new head of another size (5 classes).
HEAD = """\
nngraph: 1
name: transfer
inputs:
  x: {shape: [4]}
  y: {shape: [], dtype: int64}
layers:
  - {op: dense, name: hidden, units: 6, activation: tanh, trainable: false}
  - {op: batchnorm, name: norm, trainable: false}
  - {op: dense, name: logits, units: 5}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, y]}
train:
  optimizer: {type: sgd, lr: 0.1}
  init_from: {file: base.nnz, skip: [logits]}
"""


def _batch(n=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((n, 4)), "y": rng.integers(0, classes, n)}


@pytest.fixture
def base(tmp_path):
    """A trained base model saved as tmp_path/base.nnz, with moved batchnorm statistics."""
    model = nngraph.compile(BASE, backend="reference", seed=3)
    for _ in range(3):
        model.train_step(_batch())
    path = tmp_path / "base.nnz"
    model.save(str(path))
    return model, path


def test_layers_are_copied_by_name_and_a_new_head_keeps_its_initial_values(tmp_path, base):
    source, _ = base
    spec = tmp_path / "transfer.yaml"
    spec.write_text(HEAD)
    fresh = nngraph.compile(str(spec), backend="reference", seed=9)
    scratch = nngraph.compile(HEAD.replace("  init_from: {file: base.nnz, skip: [logits]}\n",
                                           ""), backend="reference", seed=9)
    for k in ("hidden.W", "hidden.b", "norm.gamma", "norm.beta"):
        np.testing.assert_array_equal(fresh.params[k], source.params[k])
    for k in ("running_mean", "running_var"):
        np.testing.assert_array_equal(fresh.state["norm"][k], source.state["norm"][k])
    assert not np.allclose(source.state["norm"]["running_mean"], 0)
    np.testing.assert_array_equal(fresh.params["logits.W"], scratch.params["logits.W"])
    assert fresh.loaded.loaded == ["hidden", "norm"] and fresh.loaded.skipped == ["logits"]
    assert "loaded 2 layers from" in fresh.loaded.line() and "skipped: logits" in \
        fresh.loaded.line()
    # frozen layers stay as loaded while the head trains
    before = fresh.params["logits.W"].copy()
    fresh.train_step(_batch(classes=5))
    np.testing.assert_array_equal(fresh.params["hidden.W"], source.params["hidden.W"])
    assert not np.array_equal(fresh.params["logits.W"], before)


def test_a_layer_of_other_shapes_is_an_error_naming_it_and_nothing_is_copied(base):
    _, path = base
    model = nngraph.compile(HEAD.replace("  init_from: {file: base.nnz, skip: [logits]}\n", ""),
                            backend="reference", seed=1)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(NNGraphError) as err:
        model.load_weights(str(path))
    message = str(err.value)
    assert "layer 'logits'" in message and "[6, 5] here and [6, 3] in the file" in message
    assert "skip" in message
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
    assert model.loaded is None
    report = model.load_weights(str(path), skip=["logits"])
    assert report.loaded == ["hidden", "norm"]


def test_a_file_with_none_of_the_layers_and_a_bad_skip_are_errors(base, tmp_path):
    _, path = base
    other = nngraph.compile(BASE.replace("name: hidden", "name: trunk")
                            .replace("name: norm", "name: bn").replace("logits", "out"),
                            backend="reference")
    with pytest.raises(NNGraphError, match="none of its layers"):
        other.load_weights(str(path))
    with pytest.raises(NNGraphError, match="skip: nothere"):
        other.load_weights(str(path), skip=["nothere"])
    with pytest.raises(NNGraphError, match="no such file"):
        other.load_weights(str(tmp_path / "missing.nnz"))


def test_the_cpu_backend_runs_the_loaded_parameters(base):
    """Loaded into the CPU backend's flat storage: its predictions are the source's."""
    source, path = base
    x = _batch()["x"]
    model = nngraph.compile(BASE, backend="cpu", seed=5, dtype="float64", weights=str(path))
    np.testing.assert_allclose(model.predict({"x": x}), source.predict({"x": x}), rtol=1e-5,
                               atol=1e-6)          # the source computes in float32


@pytest.mark.parametrize("init,code,text", [
    ("init_from: [a.nnz]", "E012", "init_from is a file name"),
    ("init_from: {skip: [logits]}", "E010", "needs file"),
    ("init_from: {file: a.nnz, skip: [logit]}", "E013", "no layer 'logit'"),
    ("init_from: {file: a.nnz, skip: logits}", "E012", "list of layer names"),
    ("init_from: {file: a.nnz, keep: [x]}", "E011", "unknown key 'keep'"),
])
def test_init_from_is_checked_where_it_is_written(init, code, text):
    spec = HEAD.replace("init_from: {file: base.nnz, skip: [logits]}", init)
    with pytest.raises(SpecError) as err:
        nngraph.load(spec)
    d = err.value.diagnostics[0]
    assert d.code == code and text in d.message and d.line == spec.splitlines().index(
        next(line for line in spec.splitlines() if "init_from" in line)) + 1


def test_cli_train_and_summary_with_weights(base, tmp_path, capsys):
    _, path = base
    spec = tmp_path / "transfer.yaml"
    spec.write_text(HEAD.replace("  init_from: {file: base.nnz, skip: [logits]}\n", "")
                    .replace("units: 5", "units: 3") +
                    "  data: {dataset: iris, limit: 30}\n  epochs: 1\n  batch_size: 10\n")
    assert cli.main(["summary", str(spec), "--weights", str(path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isalpha()}
    assert rows["hidden"].rstrip().endswith("loaded")
    assert rows["logits"].rstrip().endswith("loaded")
    assert "Weights                 loaded 3 layers from" in out
    out_model = tmp_path / "t.nnz"
    assert cli.main(["train", str(spec), "--weights", str(path), "--backend", "reference",
                     "--out", str(out_model), "-q"]) == 0
    assert "loaded 3 layers from" in capsys.readouterr().out
    trained = nngraph.load_model(str(out_model))
    np.testing.assert_array_equal(trained.params["hidden.W"], base[0].params["hidden.W"])
    assert cli.main(["train", str(spec), "--weights", str(path), "--resume",
                     str(out_model)]) == 1
    assert "give one of them" in capsys.readouterr().err


def test_the_worked_example_takes_lenet5s_convolutions(tmp_path):
    """specs/transfer/digits_from_mnist.yaml starts from a lenet5.nnz beside it: c1 and
    conv2d_1 come from it, the new head does not."""
    import os
    import shutil
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lenet = nngraph.compile(os.path.join(root, "specs", "lenet5.yaml"), backend="reference",
                            seed=4)
    lenet.save(str(tmp_path / "lenet5.nnz"))
    shutil.copy(os.path.join(root, "specs", "transfer", "digits_from_mnist.yaml"), tmp_path)
    model = nngraph.compile(str(tmp_path / "digits_from_mnist.yaml"), backend="reference")
    assert model.loaded.loaded == ["c1", "conv2d_1"]
    assert model.loaded.kept == ["head_hidden", "head"]
    np.testing.assert_array_equal(model.params["conv2d_1.W"], lenet.params["conv2d_1.W"])


def test_an_onnx_model_is_a_source_too(base, tmp_path):
    """A model exported to ONNX keeps its layer names, so a network starts from it as from
    its .nnz (batchnorm statistics included)."""
    pytest.importorskip("onnx")
    source, _ = base
    path = tmp_path / "base.onnx"
    source.export_onnx(str(path))
    model = nngraph.compile(BASE, backend="reference", seed=8, weights=str(path))
    assert model.loaded.loaded == ["hidden", "norm", "logits"]
    for k, v in source.params.items():
        np.testing.assert_allclose(model.params[k], v, rtol=1e-7)
    np.testing.assert_allclose(model.state["norm"]["running_var"],
                               source.state["norm"]["running_var"], rtol=1e-7)
