"""nngraph train / eval / predict from the command line, and the initializers."""
import os
import re

import numpy as np
import pytest

import nngraph
from nngraph import initializers
from nngraph.cli import main

SPECS = os.path.join(os.path.dirname(__file__), "..", "specs")


@pytest.mark.parametrize("name", ["iris_mlp.json", "perceptron_and.yaml", "autoencoder.yaml"])
def test_train_eval_predict(name, tmp_path, capsys):
    model = str(tmp_path / "m.nnz")
    assert main(["train", os.path.join(SPECS, name), "--epochs", "2", "--out", model, "-q"]) == 0
    out = capsys.readouterr().out
    assert "done in" in out and f"saved {model}" in out and os.path.exists(model)
    assert main(["eval", model, "--split", "all"]) == 0
    assert "loss" in capsys.readouterr().out
    assert main(["predict", model, "--limit", "3"]) == 0
    assert "[2]" in capsys.readouterr().out
    csv = str(tmp_path / "p.csv")
    assert main(["predict", model, "-o", csv]) == 0
    assert np.loadtxt(csv, delimiter=",", skiprows=1).ndim >= 1


def test_resume_continues_to_the_total_epochs(tmp_path, capsys):
    spec, model = os.path.join(SPECS, "iris_mlp.json"), str(tmp_path / "m.nnz")
    assert main(["train", spec, "--epochs", "2", "--out", model, "-q"]) == 0
    assert main(["train", spec, "--epochs", "3", "--resume", model, "--out", model, "-q"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "after epoch 2" in out and "1 epoch;" in out
    assert main(["train", spec, "--epochs", "3", "--resume", model, "--out", model]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_a_corrupt_model_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.nnz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert main(["eval", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.nnz" in err and "Traceback" not in err


def test_initializers_are_seeded_and_scaled():
    rng = lambda: np.random.default_rng(3)   # noqa: E731
    a = initializers.initialize("he_normal", (400, 300), rng(), 400, 300)
    b = initializers.initialize("he_normal", (400, 300), rng(), 400, 300)
    assert np.array_equal(a, b) and a.dtype == np.float32
    assert abs(a.std() - np.sqrt(2 / 400)) < 0.003
    g = initializers.initialize("glorot_uniform", (400, 300), rng(), 400, 300)
    assert np.abs(g).max() <= np.sqrt(6 / 700) and np.abs(g).max() > 0.9 * np.sqrt(6 / 700)
    u = initializers.initialize(initializers.validate({"uniform": {"low": -0.1, "high": 0.2}}),
                                (1000,), rng(), 1, 1)
    assert u.min() >= -0.1 and u.max() <= 0.2
    assert np.all(initializers.initialize(initializers.validate("ones"), (3,), rng(), 1, 1) == 1)
    lit = initializers.validate([[1, 2], [3, 4]])
    assert initializers.fits(lit, (2, 2)) is None and "shape" in initializers.fits(lit, (3, 2))
    q = initializers.initialize("orthogonal", (16, 16), rng(), 16, 16, np.float64)
    np.testing.assert_allclose(q @ q.T, np.eye(16), atol=1e-12)


@pytest.mark.parametrize("option,value", [("--lr", "nan"), ("--lr", "-1"), ("--lr", "x"),
                                          ("--epochs", "0"), ("--batch-size", "-3")])
def test_train_refuses_bad_numbers_before_anything_runs(tmp_path, capsys, option, value):
    from nngraph.cli import main
    out = tmp_path / "m.nnz"
    with pytest.raises(SystemExit) as exit_:
        main(["train", os.path.join(SPECS, "xor_mlp.yaml"), option, value, "--out", str(out)])
    assert exit_.value.code == 2
    assert f"argument {option}:" in capsys.readouterr().err
    assert not out.exists()


def test_predict_takes_one_unnamed_array_and_names_what_an_npz_lacks(tmp_path, capsys):
    """np.savez(f, x) stores arr_0: predict takes it for the one feature input and asks for
    no labels; anything else it cannot place gets an error listing what the file holds."""
    model = str(tmp_path / "m.nnz")
    assert main(["train", os.path.join(SPECS, "iris_mlp.json"), "--epochs", "1", "--out",
                 model, "-q"]) == 0
    capsys.readouterr()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x)
    assert main(["predict", model, "--input", str(tmp_path / "x.npz")]) == 0
    assert "first 5 of 5 predictions" in capsys.readouterr().out
    np.savez(tmp_path / "two.npz", x, x)
    assert main(["predict", model, "--input", str(tmp_path / "two.npz")]) == 1
    err = capsys.readouterr().err
    assert "holds 'arr_0' (5, 4) float32, 'arr_1' (5, 4) float32" in err
    assert "np.savez('two.npz', " in err and "=x)" in err
    assert main(["eval", model, "--data", str(tmp_path / "x.npz")]) == 1   # labels needed
    assert "holds 'arr_0'" in capsys.readouterr().err


def test_predictions_csv_holds_the_class_and_its_probabilities(tmp_path, capsys):
    model = str(tmp_path / "m.nnz")
    assert main(["train", os.path.join(SPECS, "iris_mlp.json"), "--epochs", "1", "--out",
                 model, "-q"]) == 0
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x)
    out = tmp_path / "p.csv"
    assert main(["predict", model, "--input", str(tmp_path / "x.npz"), "-o", str(out)]) == 0
    header, *rows = out.read_text().splitlines()
    names = header.split(",")
    table = np.array([[float(v) for v in r.split(",")] for r in rows])
    scores = table[:, [i for i, n in enumerate(names) if re.fullmatch(r"[A-Za-z0-9]+_\d+", n)]]
    probs = table[:, [i for i, n in enumerate(names) if "_prob_" in n]]
    classes = table[:, names.index(next(n for n in names if n.endswith("_class")))]
    assert scores.shape == probs.shape == (5, 3)
    np.testing.assert_array_equal(classes, scores.argmax(axis=1))
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    np.testing.assert_array_equal(probs.argmax(axis=1), classes)



def test_a_first_compile_says_what_it_is_doing(tmp_path, capsys, monkeypatch):
    """A network compiled for the first time (empty caches) says so before numba's
    seconds of work, and how many kernels it compiled; a cached one says nothing."""
    monkeypatch.setenv("NNGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    spec = tmp_path / "tiny.yaml"
    spec.write_text(open(os.path.join(SPECS, "xor_mlp.yaml")).read()
                    .replace("name: xor_mlp", "name: tiny_first_compile"))
    out = str(tmp_path / "m.nnz")
    assert main(["train", str(spec), "--epochs", "1", "--out", out, "-q"]) == 0
    assert re.search(r"compiling tiny_first_compile for cpu \(5 fused groups\), first time "
                     r"only \(cached after\) \.\.\. \d+ kernels in [\d.]+ s",
                     capsys.readouterr().out)
    assert main(["train", str(spec), "--epochs", "1", "--out", out, "-q"]) == 0
    assert "compiling" not in capsys.readouterr().out


def test_predictions_of_logits_under_a_sigmoid_cross_entropy(tmp_path):
    spec = tmp_path / "binary.yaml"
    spec.write_text("nngraph: 1\nname: binary\ninputs:\n  x: {shape: [3]}\n  t: {shape: [1]}\n"
                    "layers:\n  - {op: dense, name: logit, units: 1}\noutputs: [logit]\n"
                    "losses:\n  - {op: sigmoid_cross_entropy, in: [logit, t]}\n")
    model = str(tmp_path / "m.nnz")
    nngraph.compile(str(spec), backend="reference").save(model)
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(1).normal(size=(6, 3)))
    out = tmp_path / "p.csv"
    assert main(["predict", model, "--input", str(tmp_path / "x.npz"), "-o", str(out),
                 "--backend", "reference"]) == 0
    header, *rows = out.read_text().splitlines()
    assert header.split(",") == ["logit", "logit_class", "logit_prob"]
    table = np.array([[float(v) for v in r.split(",")] for r in rows])
    np.testing.assert_allclose(table[:, 2], 1 / (1 + np.exp(-table[:, 0])), rtol=1e-4)
    np.testing.assert_array_equal(table[:, 1], table[:, 0] > 0)
