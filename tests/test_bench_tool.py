"""tools/bench.py on tiny settings with the reference backend: the document has its keys, and
nngraph and its torch twins compute the same thing (the benchmark's ratios mean nothing
otherwise)."""
import json
import os
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))

import bench  # noqa: E402
import bench_cases as bc  # noqa: E402
import bench_timing as bt  # noqa: E402
import peers  # noqa: E402

TINY = bt.Settings(warmup_steps=1, repeats=1, min_time_s=0.01, latency_calls=3, gemm_calls=1,
                   compile_cold_runs=1, compile_warm_runs=1, settle_s=0.0)


@pytest.fixture(scope="module")
def doc():
    return bench.run(list(bench.GROUPS), "reference", TINY)


def test_document_has_every_case_and_no_errors(doc):
    assert doc["summary"]["errors"] == [], {k: doc["cases"][k]["error"]
                                            for k in doc["summary"]["errors"]}
    assert set(doc["cases"]) == {
        "mlp.train", "mlp.infer_b1", "mlp.infer_b256", "mlp.flops", "lenet.train",
        "lenet.infer_b1", "lenet.infer_b256", "lenet.compile_cold", "lenet.compile_warm",
        "lstm.train", "mlp.infer_b1_frozen", "mlp.infer_b256_frozen",
        "lenet.infer_b1_frozen", "lenet.infer_b256_frozen"}
    for key in ("cpu_count", "numpy", "numba", "torch", "onnxruntime", "torch_threads"):
        assert key in doc["machine"]
    assert doc["machine"]["torch_threads"] == 2
    assert {"passed", "failed", "errors", "all_pass"} <= set(doc["summary"])
    json.loads(json.dumps(doc))                        # plain JSON all the way down


def test_every_case_names_its_target_and_verdict(doc):
    for name, entry in doc["cases"].items():
        target = entry["target"]
        value = entry[target["key"]]
        # the reference backend compiles nothing: its compile time may round to 0 s
        assert value >= 0 if name.endswith(("compile_cold", "compile_warm")) else value > 0, name
        assert isinstance(entry["pass"], bool)
        if "min" in target:
            assert target["key"].startswith("ratio_") and entry["pass"] == (value >= target["min"])
        else:
            assert entry["pass"] == (value <= target["max"])
    cases = doc["cases"]
    assert cases["mlp.train"]["target"] == {"key": "ratio_nngraph_over_torch", "min": 3.0}
    assert cases["lenet.train"]["target"]["min"] == 2.0
    assert cases["lstm.train"]["target"]["min"] == 1.5
    assert cases["mlp.infer_b1"]["target"]["key"] == "ratio_onnxruntime_over_nngraph_latency"
    assert cases["lenet.infer_b256"]["target"]["key"] == "ratio_nngraph_over_onnxruntime"
    for name in ("mlp.infer_b1", "mlp.infer_b256"):    # the Model, then its frozen copy
        live, frozen = cases[name], cases[f"{name}_frozen"]
        assert (live["model"], frozen["model"]) == ("Model", "Model.freeze()")
        assert frozen["target"] == live["target"]
        assert live[live["target"]["key"]] != frozen[frozen["target"]["key"]]
    assert cases["mlp.flops"]["flops_per_sample"] == 3 * 2 * (784 * 128 + 128 * 64 + 64 * 10)
    assert cases["lenet.compile_cold"]["target"]["max"] == 5.0
    assert cases["lenet.compile_warm"]["target"]["max"] == 0.5
    assert cases["lenet.compile_cold"]["detail"]["executor"] == "ReferenceExecutor"
    for kind in ("cold", "warm"):
        entry = cases[f"lenet.compile_{kind}"]
        assert entry["seconds_with_numba_init"] == entry["seconds"] + \
            entry["detail"]["numba_init_s"] > entry["seconds"]
        assert entry["runs"] == [entry["seconds"]]


def test_nngraph_and_torch_losses_agree(doc):
    for name in ("mlp.train", "mlp.flops", "lenet.train", "lstm.train"):
        check = doc["cases"][name]["loss_check"]
        assert check["rel_diff"][0] <= 1e-4, name
        # later steps agree too: same gradients, same momentum update
        assert max(check["rel_diff"]) <= 1e-3, name
    for name in ("mlp.infer_b1", "lenet.infer_b256"):
        assert max(doc["cases"][name]["max_abs_diff"].values()) <= 1e-4
        assert "nngraph_frozen" in doc["cases"][name]["max_abs_diff"]


def test_loss_check_catches_a_different_torch_model():
    import nngraph
    model = nngraph.compile(bc.SPECS["mlp"], backend="reference", seed=0)
    params = {k: v.copy() for k, v in model.params.items()}
    params["hidden1.W"] = params["hidden1.W"][::-1].copy()      # rows swapped: another net
    trainer = peers.TorchTrainer(peers.torch_model("mlp", params), "image", bc.LR, bc.MOMENTUM)
    batches = bc.make_batches("mlp", 8, 1)
    with pytest.raises(AssertionError, match="first-step losses differ"):
        bench.loss_check("mlp", model, trainer, batches, [peers.to_torch(b) for b in batches],
                         steps=1)


def test_torch_twin_does_not_share_memory_with_nngraph():
    import nngraph
    model = nngraph.compile(bc.SPECS["lstm"], backend="reference", seed=0)
    module = peers.torch_model("lstm", model.params)
    before = model.params["rnn.W"].copy()
    with peers.torch.no_grad():
        module.rnn.weight_ih_l0.add_(1.0)
    np.testing.assert_array_equal(model.params["rnn.W"], before)
    assert not module.rnn.bias_hh_l0.requires_grad


def test_case_selectors():
    assert bench.select("mlp") == ["mlp.train", "mlp.infer", "mlp.flops"]
    assert bench.select("train") == ["mlp.train", "lenet.train", "lstm.train"]
    assert bench.select("lenet.compile,lstm") == ["lenet.compile", "lstm.train"]
    assert bench.select(None) == list(bench.GROUPS)
    with pytest.raises(SystemExit):
        bench.select("resnet")


def test_cli_writes_the_document(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bt, "QUICK", TINY)
    out = tmp_path / "bench.json"
    rc = bench.main(["--backend", "reference", "--quick", "--cases", "mlp.train",
                     "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    assert list(printed["cases"]) == ["mlp.train"] and printed["backend"] == "reference"
