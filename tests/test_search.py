"""Hyperparameter search (nngraph/hpsearch/, `nngraph search`): Optuna's samplers, storage and
pruning over a spec's search: section, on iris with the reference backend (no compile)."""
import copy
import csv
import os
import subprocess
import sys

import pytest
import yaml

import nngraph
from nngraph import SearchError, SpecError

pytest.importorskip("optuna")

SPECS = os.path.join(os.path.dirname(__file__), "..", "specs", "search")
IRIS = os.path.join(SPECS, "iris.yaml")


def iris(**search) -> dict:
    """The iris search spec with its search section replaced by `search`."""
    with open(IRIS) as f:
        doc = yaml.safe_load(f)
    doc["search"] = search
    return doc


def test_tpe_finds_a_good_learning_rate_in_a_mostly_bad_range():
    """Of lr in [1e-5, 100] (log scale), 20 epochs of SGD reach 0.9 validation accuracy only
    for roughly 0.05 to 5: about a fifth of the range. Twelve TPE trials find one."""
    doc = iris(metric="val_accuracy", sampler="tpe", trials=12, seed=3,
               space={"train.optimizer.lr": {"log_uniform": [1.0e-5, 100.0]}})
    result = nngraph.search(doc, backend="reference", verbose=False)
    assert result.best_value >= 0.9
    values = [t.value for t in result.study.trials if t.value is not None]
    assert min(values) < 0.9                 # the range is mostly bad: some trials show it
    lr = result.best_params["train.optimizer.lr"]
    assert 1e-2 < lr < 10
    assert result.best_spec["train"]["optimizer"] == {"type": "sgd", "lr": lr}
    assert "search" not in result.best_spec
    again = nngraph.compile(result.best_spec, backend="reference")
    again.fit(verbose=0)                     # best_spec trains as it is, to the same score
    assert max(again.history["val_accuracy"]) == pytest.approx(result.best_value)


def test_grid_sampler_enumerates_exactly_its_grid():
    doc = iris(sampler="grid", space={"hidden.units": {"int": [4, 12], "step": 4},
                                      "hidden.activation": {"choice": ["relu", "tanh"]}})
    doc["train"]["epochs"] = 2
    result = nngraph.search(doc, backend="reference", verbose=False)
    seen = sorted((t.params["hidden.units"], t.params["hidden.activation"])
                  for t in result.study.trials)
    assert seen == [(u, a) for u in (4, 8, 12) for a in ("relu", "tanh")]


def test_structured_choices_reach_the_spec_as_written():
    """Optuna's storages keep numbers and strings; a choice of mappings goes through them
    as its YAML text and comes back as the mapping."""
    doc = iris(sampler="grid", space={"hidden.regularizer": {"choice": [{"l2": 0.0},
                                                                       {"l2": 0.01}]}})
    doc["train"]["epochs"] = 2
    result = nngraph.search(doc, backend="reference", verbose=False)
    assert {t.params["hidden.regularizer"] for t in result.study.trials} == \
        {"{l2: 0.0}", "{l2: 0.01}"}
    assert result.best_params["hidden.regularizer"] in ({"l2": 0.0}, {"l2": 0.01})
    assert result.best_spec["layers"][0]["regularizer"] == result.best_params["hidden.regularizer"]


def test_a_sqlite_study_resumes_and_adds_trials(tmp_path):
    db = f"sqlite:///{tmp_path / 'study.db'}"
    doc = iris(sampler="random", trials=3, space={"train.optimizer.lr": {
        "log_uniform": [1e-3, 1.0]}})
    doc["train"]["epochs"] = 2
    first = nngraph.search(doc, storage=db, backend="reference", verbose=False)
    assert len(first.study.trials) == 3
    second = nngraph.search(doc, trials=2, storage=db, backend="reference", verbose=False)
    assert len(second.study.trials) == 5
    lrs = [t.params["train.optimizer.lr"] for t in second.study.trials]
    assert len(set(lrs)) == 5                # the second run went on, it did not start over


def test_two_processes_share_one_journal_file(tmp_path):
    doc = iris(sampler="random", trials=4, space={"train.optimizer.lr": {
        "log_uniform": [1e-3, 1.0]}})
    doc["train"]["epochs"] = 2
    result = nngraph.search(doc, jobs=2, out=str(tmp_path), backend="reference",
                            verbose=False)
    assert len(result.study.trials) == 4
    assert os.path.exists(tmp_path / "study.journal")
    assert {t.state.name for t in result.study.trials} == {"COMPLETE"}


def test_bad_space_entries_are_located_errors(tmp_path):
    text = open(IRIS).read().replace("hidden.units: {int: [4, 32], step: 4}",
                                     "hiden.units: {int: [4, 32], step: 4}")
    text = text.replace("{log_uniform: [1.0e-5, 100.0]}", "{log_uniform: [0, 100.0]}")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as e:
        nngraph.load(str(path))
    lines = text.splitlines()
    msgs = {d.message: d for d in e.value.errors}
    typo = next(d for m, d in msgs.items() if "no layer 'hiden'" in m)
    assert lines[typo.line - 1].strip().startswith("hiden.units")
    assert "did you mean 'hidden'" in typo.message
    assert any("log_uniform needs lo > 0" in m for m in msgs)


def test_a_value_no_layer_accepts_is_reported_at_its_entry(tmp_path):
    text = open(IRIS).read().replace("{choice: [relu, tanh]}", "{choice: [relu, tanhh]}")
    path = tmp_path / "bad_value.yaml"
    path.write_text(text)
    nngraph.load(str(path))                  # the section itself is well formed
    with pytest.raises(SpecError) as e:
        nngraph.search(str(path), backend="reference", verbose=False)
    d = e.value.errors[0]
    assert "'tanhh'" in d.message and "hidden.activation" in d.message
    assert text.splitlines()[d.line - 1].strip().startswith("hidden.activation")


def test_layers_inside_block_instances_are_set_through_overrides():
    net = nngraph.load(os.path.join(SPECS, "..", "resnet.yaml"))
    doc = copy.deepcopy(net.spec)
    doc["search"] = {"space": {"res_1/conv_a.filters": {"choice": [4, 16]},
                               "res.filters": {"choice": [8]}}}
    net = nngraph.load(doc)
    from nngraph.hpsearch.space import trial_spec
    spec = trial_spec(net, {"res_1/conv_a.filters": 4})
    assert spec["overrides"] == {"res_1/conv_a.filters": 4}
    tried = nngraph.load(spec)
    assert tried.node("res_1/conv_a")["attrs"].filters == 4
    assert tried.node("res_2/conv_a")["attrs"].filters != 4
    with pytest.raises(SpecError, match="overrides: 'res_3/conv_a.filters' is not LAYER.ATTR"):
        nngraph.load({**spec, "overrides": {"res_3/conv_a.filters": 4}})


def test_failed_trials_keep_their_reason_and_the_search_goes_on():
    doc = iris(sampler="grid", space={"train.optimizer.lr": {"choice": [1.0e30, 0.5]}})
    doc["train"]["epochs"] = 3
    doc["layers"][0]["activation"] = "relu"         # unbounded: float32 overflows
    result = nngraph.search(doc, backend="reference", verbose=False)
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and failed[0].params == {"train.optimizer.lr": 1.0e30}
    assert "the loss became" in failed[0].user_attrs["error"]
    assert result.best_params == {"train.optimizer.lr": 0.5}


def test_without_optuna_one_line_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(SearchError, match=r"pip install nngraph\[search\]"):
        nngraph.search(IRIS, trials=1, verbose=False)


def test_cli_writes_best_spec_csv_and_plots(tmp_path):
    out = tmp_path / "out"
    spec = tmp_path / "iris.yaml"
    doc = iris(sampler="random", trials=3, seed=1, space={
        "train.optimizer.lr": {"log_uniform": [0.05, 2.0]},
        "hidden.units": {"int": [4, 8], "step": 4}})
    doc["train"]["epochs"] = 4
    spec.write_text(yaml.safe_dump(doc))
    r = subprocess.run([sys.executable, "-m", "nngraph", "search", str(spec), "--out", str(out),
                        "--backend", "reference"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("trial ") >= 3 and "best: trial" in r.stdout
    best = nngraph.load(str(out / "best.yaml"))
    assert "search" not in best.spec
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert len(rows) == 3 and {r["state"] for r in rows} == {"complete"}
    for png in ("history.png", "importances.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, "-m", "nngraph", "search", str(spec), "--storage",
                          "nosuchdb://x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("error: cannot open the study storage")
