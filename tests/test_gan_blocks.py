"""GAN building blocks: stop_gradient, sampled inputs (`sample: normal|uniform`), the ring8
dataset and the mode-coverage score of nngraph.gan_metrics."""
import json

import numpy as np
import pytest

import nngraph
from nngraph import datasets, gan_metrics, sampling
from nngraph.cli import main
from nngraph.errors import DataError, SpecError
from nngraph.ops import REGISTRY, RunContext, make_attrs
from nngraph.schema import json_schema

BACKENDS = ["reference", "cpu"]


def _grads_of(model, data):
    grads = model.gradients(data)
    return {k: np.asarray(grads.get(k, np.zeros_like(v))) for k, v in model.params.items()}


# ------------------------------------------------------------------ stop_gradient

def test_stop_gradient_rules_copy_forward_and_send_nothing_back():
    op = REGISTRY["stop_gradient"]
    x = np.arange(6.0).reshape(2, 3)
    y = op.forward(RunContext(), make_attrs(op), [x], {})
    assert np.array_equal(y, x) and y is not x
    y[0, 0] = 99.0
    assert x[0, 0] == 0.0                                  # a copy, not the input itself
    gxs, gp = op.backward(RunContext(), make_attrs(op), [x], {}, y, np.ones_like(x))
    assert gxs == [None] and gp == {} and op.differentiable_inputs == ()


def _two_paths(held: bool):
    """a feeds loss_direct itself and loss_held through stop_gradient (or, held=False,
    directly): with stop_gradient only loss_direct trains a."""
    return {"nngraph": 1, "name": "two_paths",
            "inputs": {"x": {"shape": [3]}, "t": {"shape": [2]}, "u": {"shape": [4]}},
            "layers": [{"op": "dense", "name": "a", "in": "x", "units": 4, "activation": "tanh"},
                       {"op": "stop_gradient" if held else "identity", "name": "s", "in": "a"},
                       {"op": "dense", "name": "b", "in": "s", "units": 2}],
            "losses": [{"op": "mse", "name": "held", "in": ["b", "t"]},
                       {"op": "mse", "name": "direct", "in": ["a", "u"]}]}


def _data(rng, n=6):
    return {"x": rng.normal(size=(n, 3)), "t": rng.normal(size=(n, 2)),
            "u": rng.normal(size=(n, 4))}


@pytest.mark.parametrize("backend", BACKENDS)
def test_stop_gradient_cuts_the_gradient_to_the_layers_before_it(backend):
    data = _data(np.random.default_rng(0))
    held = _grads_of(nngraph.compile(_two_paths(True), backend=backend, seed=3,
                                     dtype="float64"), data)
    free = _grads_of(nngraph.compile(_two_paths(False), backend=backend, seed=3,
                                     dtype="float64"), data)
    direct_only = dict(_two_paths(False), losses=[_two_paths(False)["losses"][1]])
    alone = _grads_of(nngraph.compile(direct_only, backend=backend, seed=3,
                                      dtype="float64"), data)
    for k in ("a.W", "a.b"):            # only loss 'direct' reaches a
        np.testing.assert_allclose(held[k], alone[k], rtol=1e-12, atol=1e-14)
        assert not np.allclose(held[k], free[k])
    for k in ("b.W", "b.b"):            # b's own gradients do not change
        np.testing.assert_allclose(held[k], free[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layers_reached_only_through_stop_gradient_stay_fixed(backend):
    spec = _two_paths(True)
    spec["losses"] = spec["losses"][:1]
    model = nngraph.compile(spec, backend=backend, seed=1)
    before = {k: np.array(v) for k, v in model.params.items()}
    grads = _grads_of(model, _data(np.random.default_rng(1)))
    assert not grads["a.W"].any() and not grads["a.b"].any() and grads["b.W"].any()
    for _ in range(3):
        model.train_step(_data(np.random.default_rng(2)))
    assert np.array_equal(model.params["a.W"], before["a.W"])
    assert not np.array_equal(model.params["b.W"], before["b.W"])


def test_stop_gradient_costs_no_numpy_call_on_the_cpu_backend():
    spec = _two_paths(True)
    model = nngraph.compile(spec, backend="cpu", seed=0)
    model.train_step(_data(np.random.default_rng(0)))
    source = open(model.executor.path).read()
    assert "v_s: a view of" in source or "k_s(" in source
    assert "R.backward" not in source and "R.forward" not in source


# ------------------------------------------------------------------ sampled inputs

def _gan_like(sample="normal", samples=64):
    """x real points, z codes; g (the 'generator') reads z only, the loss reads both."""
    return {"nngraph": 1, "name": "gan_like",
            "inputs": {"x": {"shape": [2]}, "z": {"shape": [3], "sample": sample}},
            "layers": [{"op": "dense", "name": "g", "in": "z", "units": 2},
                       {"op": "concat", "name": "both", "in": ["g", "x"], "axis": 0},
                       {"op": "dense", "name": "d", "units": 2}],
            "outputs": ["g"],
            "losses": [{"op": "mse", "in": ["d", "x"]}],
            "train": {"data": {"dataset": "ring8", "samples": samples}, "batch_size": 16,
                      "epochs": 2, "optimizer": {"type": "sgd", "lr": 0.05}}}


def _points(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)


def test_a_sampled_input_is_neither_a_feature_nor_a_label():
    net = nngraph.load(_gan_like())
    assert net.sampled_inputs == ["z"] and net.feature_inputs == ["x"]
    assert net.label_inputs == [] and net.inputs["z"].sample == "normal"
    assert nngraph.load(_gan_like("uniform")).inputs["z"].sample == "uniform"


def test_draws_are_seeded_by_step_and_purpose_and_have_their_distribution():
    net = nngraph.load(_gan_like())
    a = sampling.draw(net, "z", 4000, seed=0, purpose="train", step=5)
    assert a.shape == (4000, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, sampling.draw(net, "z", 4000, 0, "train", 5))
    for other in (sampling.draw(net, "z", 4000, 1, "train", 5),
                  sampling.draw(net, "z", 4000, 0, "train", 6),
                  sampling.draw(net, "z", 4000, 0, "evaluate", 5),
                  sampling.draw(net, "z", 4000, 0, "train", 5, rank=1)):
        assert not np.allclose(a, other)
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05
    u = sampling.draw(nngraph.load(_gan_like("uniform")), "z", 4000, 0, "train", 0)
    assert -1 <= u.min() < -0.99 and 0.99 < u.max() < 1 and abs(u.mean()) < 0.05


def test_fill_keeps_what_the_caller_gives_and_counts_rows_from_the_other_inputs():
    net = nngraph.load(_gan_like())
    given = {"x": _points(5), "z": np.ones((5, 3), np.float32)}
    assert sampling.fill(net, given, 0, "train") is given
    filled = sampling.fill(net, {"x": _points(5)}, 0, "train")
    assert filled["z"].shape == (5, 3)
    with pytest.raises(DataError, match="n=4 rows asked for, but the inputs given have 5"):
        sampling.fill(net, {"x": _points(5)}, 0, "predict", rows=4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_draws_fresh_codes_each_step_reproducibly(backend):
    x = _points(8)
    runs = []
    for _ in range(2):
        model = nngraph.compile(_gan_like(), backend=backend, seed=4)
        runs.append([model.train_step({"x": x}) for _ in range(4)])
    assert runs[0] == runs[1]
    # the same step with the same parameters and data: a fresh draw gives another loss
    model = nngraph.compile(_gan_like(), backend=backend, seed=4)
    g0 = model.gradients({"x": x})
    model.step = 1
    assert not np.allclose(g0["g.W"], model.gradients({"x": x})["g.W"])


def test_backends_draw_the_same_codes():
    x = _points(8)
    losses = {}
    for backend in BACKENDS:
        model = nngraph.compile(_gan_like(), backend=backend, seed=2, dtype="float64")
        losses[backend] = [model.train_step({"x": x}) for _ in range(3)]
    np.testing.assert_allclose(losses["cpu"], losses["reference"], rtol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_evaluate_and_predict_without_the_sampled_array(backend):
    model = nngraph.compile(_gan_like(), backend=backend, seed=0)
    history = model.fit(verbose=0)                        # ring8 has no array 'z'
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    x = _points(20, seed=5)
    first = model.evaluate({"x": x})
    assert first == model.evaluate({"x": x})              # evaluation noise is fixed
    assert model.predict({"x": x}).shape == (20, 2)       # one code per row of x
    samples = model.predict(n=7)                          # the generator needs no x
    assert samples.shape == (7, 2)
    np.testing.assert_array_equal(samples, model.predict(n=7))
    codes = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    want = codes @ model.params["g.W"] + model.params["g.b"]
    np.testing.assert_allclose(model.predict({"z": codes}), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.freeze().predict({"z": codes}), want, rtol=1e-5,
                               atol=1e-6)


def test_a_network_of_sampled_inputs_alone_predicts_n_rows():
    spec = {"nngraph": 1, "name": "gen", "inputs": {"z": {"shape": [2], "sample": "uniform"}},
            "layers": [{"op": "dense", "name": "g", "units": 3}]}
    model = nngraph.compile(spec, backend="reference", seed=0)
    assert model.predict(n=5).shape == (5, 3)
    codes = np.zeros((2, 2), np.float32)
    np.testing.assert_allclose(model.predict(codes), np.tile(model.params["g.b"], (2, 1)))
    with pytest.raises(DataError, match=r"every input of 'gen' is sampled.*predict\(n=64\)"):
        model.predict()
    plain = nngraph.compile({"nngraph": 1, "name": "plain", "inputs": {"x": {"shape": [2]}},
                             "layers": [{"op": "dense", "units": 1}]}, backend="reference")
    with pytest.raises(DataError, match="n .* is for networks with sampled inputs"):
        plain.predict(np.zeros((2, 2)), n=2)


def test_save_and_load_resume_with_the_same_codes(tmp_path):
    x = _points(8)
    model = nngraph.compile(_gan_like(), backend="reference", seed=6)
    for _ in range(3):
        model.train_step({"x": x})
    path = str(tmp_path / "g.nnz")
    model.save(path)
    going_on = [model.train_step({"x": x}) for _ in range(3)]
    resumed = nngraph.load_model(path)
    assert [resumed.train_step({"x": x}) for _ in range(3)] == going_on


def test_cli_trains_evaluates_and_predicts_without_the_sampled_array(tmp_path, capsys):
    spec, out = tmp_path / "gan_like.json", str(tmp_path / "m.nnz")
    spec.write_text(json.dumps(_gan_like()))
    assert main(["train", str(spec), "--epochs", "1", "--backend", "reference", "--out", out,
                 "-q"]) == 0
    assert main(["eval", out]) == 0
    assert "loss" in capsys.readouterr().out
    assert main(["predict", out, "--limit", "2"]) == 0
    assert "[1]" in capsys.readouterr().out


def test_an_unknown_sample_kind_is_located_in_the_spec(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("nngraph: 1\nname: bad\ninputs:\n  z: {shape: [4], sample: normla}\n"
                    "layers:\n  - {op: dense, units: 2}\n")
    with pytest.raises(SpecError) as e:
        nngraph.load(str(path))
    assert f"{path}:4:" in str(e.value) and "E013" in str(e.value)
    assert "did you mean 'normal'" in str(e.value)


def test_a_sampled_label_or_integer_input_is_refused(tmp_path):
    path = tmp_path / "label.yaml"
    path.write_text("nngraph: 1\nname: label\ninputs:\n  x: {shape: [2]}\n"
                    "  t: {shape: [1], sample: normal}\n"
                    "layers:\n  - {op: dense, name: d, units: 1}\n"
                    "losses:\n  - {op: mse, in: [d, t]}\n")
    with pytest.raises(SpecError) as e:
        nngraph.load(str(path))
    assert f"{path}:5:" in str(e.value) and "only losses read it" in str(e.value)
    spec = _gan_like()
    spec["inputs"]["z"]["dtype"] = "int64"
    with pytest.raises(SpecError, match="a sampled input holds floats, not int64"):
        nngraph.load(spec)


def test_data_never_maps_to_a_sampled_input_and_the_schema_names_sample():
    spec = _gan_like()
    spec["train"]["data"]["map"] = {"z": "x"}
    model = nngraph.compile(spec, backend="reference")
    with pytest.raises(DataError, match="'z' is not an input the data supplies.*sampled"):
        model.fit(verbose=0)
    schema = json_schema()
    assert schema["$defs"]["input"]["properties"]["sample"]["enum"] == ["normal", "uniform"]


# ------------------------------------------------------------------ ring8 and coverage

def test_ring8_is_eight_tight_seeded_gaussians():
    x, y = datasets.load_dataset("ring8", samples=1600, seed=3)
    assert x.shape == (1600, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, datasets.load_dataset("ring8", samples=1600, seed=3)[0])
    assert not np.array_equal(x, datasets.load_dataset("ring8", samples=1600, seed=4)[0])
    modes = datasets.ring8_modes()
    np.testing.assert_allclose(np.hypot(*modes.T), 2.0)
    offsets = x - modes[y]
    assert set(y.tolist()) == set(range(8)) and abs(offsets.std() - 0.02) < 0.002
    assert np.abs(offsets).max() < 6 * 0.02
    assert datasets.load_dataset("ring8")[0].shape == (2000, 2)
    with pytest.raises(DataError, match="has no length"):
        datasets.load_dataset("ring8", length=3)


def test_coverage_counts_modes_and_samples_near_them():
    x, _ = datasets.load_dataset("ring8", samples=4000, seed=0)
    data = gan_metrics.mode_coverage(x)
    assert data.covered == 8 and 0.98 < data.high_quality <= 1.0
    assert str(data).startswith("8 of 8 modes covered")
    modes = datasets.ring8_modes()
    collapsed = modes[2] + np.random.default_rng(0).normal(0, 0.01, (500, 2))
    one = gan_metrics.mode_coverage(collapsed)
    assert one.covered == 1 and one.high_quality == 1.0 and one.counts[2] == 500
    between = gan_metrics.mode_coverage(np.zeros((100, 2)))
    assert between.covered == 0 and between.high_quality == 0.0
    # 3 modes with 10% each, one with 4 of 1000 (< 1%): 3 covered, 30.4% high quality
    parts = [np.tile(modes[k], (100, 1)) for k in range(3)] + [np.tile(modes[5], (4, 1)),
                                                               np.full((696, 2), 9.0)]
    mixed = gan_metrics.mode_coverage(np.concatenate(parts))
    assert (mixed.covered, mixed.needed, mixed.counts[5]) == (3, 10, 4)
    assert mixed.high_quality == pytest.approx(0.304)
    assert gan_metrics.mode_coverage(np.concatenate(parts), min_fraction=0.004).covered == 4


def test_coverage_refuses_what_is_not_points():
    with pytest.raises(DataError, match=r"shape \(n, 2\)"):
        gan_metrics.mode_coverage(np.zeros((5, 3)))
    with pytest.raises(DataError, match="1 of 2 samples are not finite"):
        gan_metrics.mode_coverage(np.array([[0.0, 1.0], [np.nan, 0.0]]))
