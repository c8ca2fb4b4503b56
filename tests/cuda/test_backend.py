"""backend="cuda" where numba can run CUDA kernels (in CI: its simulator): the generated
module runs the specs' networks with the reference backend's numbers."""
import os

import numpy as np
import pytest

import nngraph
from nngraph.backends import cuda
from nngraph.backends.lowering import Rule
from nngraph.cli_tools import random_batch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = os.path.join(ROOT, "specs")


def test_device_status_names_the_simulator_or_the_gpu():
    usable, what = cuda.device_status()
    assert usable
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        assert "simulator" in what


def test_the_worked_2_2_2_example_on_cuda():
    """E = 0.298371109 before the step and w5 = 0.35891648 after it, as on paper."""
    m = nngraph.compile(os.path.join(SPECS, "backprop_222.yaml"), backend="cuda",
                        dtype="float64")
    batch = {"x": np.array([[0.05, 0.10]]), "target": np.array([[0.01, 0.99]])}
    assert m.train_step(batch) == pytest.approx(0.298371109, abs=1e-9)
    w = m.params["output.W"]
    assert w[0, 0] == pytest.approx(0.35891648, abs=1e-8)          # w5
    assert m.params["hidden.W"][0, 0] == pytest.approx(0.149780716, abs=1e-8)   # w1


@pytest.mark.parametrize("spec,dtype,tol,gemm", [
    ("xor_mlp.yaml", "float64", 1e-9, "auto"), ("iris_mlp.json", "float64", 1e-9, "auto"),
    ("rbf_network.yaml", "float64", 1e-9, "auto"), ("xor_mlp.yaml", "float32", 1e-4, "auto"),
    ("iris_mlp.json", "float64", 1e-9, "tiled"), ("iris_mlp.json", "float32", 1e-4, "tiled")])
def test_forward_gradients_and_three_steps_match_the_reference(spec, dtype, tol, gemm,
                                                               monkeypatch):
    """gemm 'tiled': every product on the tiled kernel (small products use gemm_small)."""
    if gemm == "tiled":
        monkeypatch.setenv("NNGRAPH_CUDA_GEMM", "tiled")
    path = os.path.join(SPECS, spec)
    m = nngraph.compile(path, backend="cuda", seed=0, dtype=dtype)
    r = nngraph.compile(path, backend="reference", seed=0, dtype=dtype)
    batch = random_batch(m.net, 5, np.random.default_rng(1))
    features = {k: batch[k] for k in m.net.feature_inputs}
    got, want = m.predict(features), r.predict(features)
    for name in want if isinstance(want, dict) else [None]:
        np.testing.assert_allclose(got[name] if name else got, want[name] if name else want,
                                   rtol=tol, atol=tol)
    gm, gr = m.gradients(batch), r.gradients(batch)
    assert set(gm) == set(gr)
    for k in gr:
        np.testing.assert_allclose(gm[k], gr[k], rtol=tol, atol=tol, err_msg=k)
    for _ in range(3):
        assert m.train_step(batch) == pytest.approx(r.train_step(batch), rel=tol, abs=tol)
    for k in r.params:
        np.testing.assert_allclose(m.params[k], r.params[k], rtol=tol, atol=tol, err_msg=k)


def test_generated_source_is_cuda_kernels_with_their_layers():
    m = nngraph.compile(os.path.join(SPECS, "xor_mlp.yaml"), backend="cuda")
    source = m.executor.source
    assert '"""nngraph generated CUDA code for spec' in source
    assert "@cuda.jit" in source and "_gemm.gemm(" in source
    assert "def train(R," in source and "def predict(R," in source


def test_fit_evaluate_save_and_load_on_another_backend(tmp_path):
    """fit and evaluate as the reference backend does; a model saved on cuda loads on the
    CPU with the same predictions, and on cuda again by default."""
    path = os.path.join(SPECS, "xor_mlp.yaml")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    data = {"x": x, "target": np.array([[0], [1], [1], [0]], float)}
    m = nngraph.compile(path, backend="cuda", seed=0, dtype="float64")
    r = nngraph.compile(path, backend="reference", seed=0, dtype="float64")
    hm = m.fit(data, epochs=2, batch_size=4, verbose=0)
    hr = r.fit(data, epochs=2, batch_size=4, verbose=0)
    np.testing.assert_allclose(hm["loss"], hr["loss"], rtol=1e-9)
    assert m.evaluate(data)["loss"] == pytest.approx(r.evaluate(data)["loss"], rel=1e-9)
    m.save(str(tmp_path / "m.nnz"))
    on_cpu = nngraph.load_model(str(tmp_path / "m.nnz"), backend="cpu")
    np.testing.assert_allclose(on_cpu.predict(x), m.predict(x), rtol=1e-12)
    assert nngraph.load_model(str(tmp_path / "m.nnz")).backend == "cuda"


TINY_CONV = """
nngraph: 1
name: tiny_conv
inputs:
  image: {shape: [1, 6, 6]}
  label: {shape: [], dtype: int64}
layers:
  - {op: conv2d, name: c1, filters: 2, kernel: 3, activation: relu}
  - {op: maxpool2d, size: 2}
  - {op: flatten}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: max_margin, in: [logits, label]}
train:
  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
"""


def _declines(monkeypatch, op: str, kind: str) -> None:
    """Make the CUDA rule of `op`'s `kind` groups decline (return None), as a rule does for a
    case it does not cover: those groups run their numpy rule on host copies."""
    cuda.lower.rules()              # every rule registered: none comes back over this one
    monkeypatch.setitem(cuda.lower.REGISTRY.rules, (op, kind),
                        Rule(op, kind, lambda site: None))


@pytest.mark.parametrize("pool", ["{op: maxpool2d, size: 2}",
                                  "{op: maxpool2d, size: 2, stride: 1}",    # windows overlap
                                  "{op: maxpool2d, size: 2, padding: 1}"])
def test_a_conv_network_with_host_groups_and_views_matches_the_reference(tmp_path, pool,
                                                                        monkeypatch):
    """The max_margin loss, its CUDA rule made to decline, runs its numpy rule on host
    copies after the device's groups: conv, max pooling (its arg-max, padding cells that
    never win, and its backward with atomic adds where windows overlap) and dense; flatten
    is a view of the device arena. Together they give the reference's numbers."""
    _declines(monkeypatch, "max_margin", "loss")
    spec = tmp_path / "tiny_conv.yaml"
    spec.write_text(TINY_CONV.replace("{op: maxpool2d, size: 2}", pool))
    m = nngraph.compile(str(spec), backend="cuda", seed=0, dtype="float64")
    r = nngraph.compile(str(spec), backend="reference", seed=0, dtype="float64")
    runs = m.executor.gen.per_mode["train"].runs
    assert any(isinstance(x, cuda.lower.View) for x in runs) and None in runs
    batch = random_batch(m.net, 3, np.random.default_rng(2))
    for k, g in r.gradients(batch).items():
        np.testing.assert_allclose(m.gradients(batch)[k], g, rtol=1e-9, atol=1e-12, err_msg=k)
    for _ in range(2):
        assert m.train_step(batch) == pytest.approx(r.train_step(batch), rel=1e-9)
    np.testing.assert_allclose(m.predict({"image": batch["image"]}),
                               r.predict({"image": batch["image"]}), rtol=1e-9)


TINY_MERGE = """
nngraph: 1
name: tiny_merge
inputs:
  x: {shape: [3]}
  target: {shape: [2]}
layers:
  - {op: dense, name: a, units: 2, activation: tanh, in: [x]}
  - {op: dense, name: b, units: 2, activation: sigmoid, in: [x]}
  - {op: add, name: s, in: [a, b]}
  - {op: multiply, name: p, in: [s, a]}
outputs: [p]
losses:
  - {op: squared_error, in: [p, target]}
train:
  optimizer: {type: adam, lr: 0.01}
"""


def test_add_and_multiply_run_on_the_device_and_match_the_reference(tmp_path):
    spec = tmp_path / "tiny_merge.yaml"
    spec.write_text(TINY_MERGE)
    m = nngraph.compile(str(spec), backend="cuda", seed=0, dtype="float64")
    r = nngraph.compile(str(spec), backend="reference", seed=0, dtype="float64")
    assert None not in m.executor.gen.per_mode["train"].runs      # no host group
    batch = random_batch(m.net, 3, np.random.default_rng(3))
    for _ in range(3):
        assert m.train_step(batch) == pytest.approx(r.train_step(batch), rel=1e-9)
    for k in r.params:
        np.testing.assert_allclose(m.params[k], r.params[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_device_picks_the_gpu_and_refuses_one_that_is_not_there():
    path = os.path.join(SPECS, "xor_mlp.yaml")
    m = nngraph.compile(path, backend="cuda", device=0)
    assert m.executor.device_index == 0 and m.freeze().executor.device_index == 0
    with pytest.raises(nngraph.NNGraphError, match=r"device=7: this machine has \d+ GPU"):
        nngraph.compile(path, backend="cuda", device=7)
    with pytest.raises(nngraph.NNGraphError, match="a GPU's number"):
        nngraph.compile(path, backend="cuda", device=-1)


def test_params_are_host_copies_that_follow_the_device():
    """Reading model.params after steps gives the device's values; writing them in place
    before a step reaches the step (the mirror copies them in), as on the CPU."""
    path = os.path.join(SPECS, "xor_mlp.yaml")
    m = nngraph.compile(path, backend="cuda", seed=0, dtype="float64")
    r = nngraph.compile(path, backend="reference", seed=0, dtype="float64")
    batch = {"x": np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float),
             "target": np.array([[0], [1], [1], [0]], float)}
    for model in (m, r):
        model.train_step(batch)
        model.params["hidden.W"][...] = 0.25        # an edit between steps
        model.train_step(batch)
    for k in r.params:
        np.testing.assert_allclose(m.params[k], r.params[k], rtol=1e-12, err_msg=k)
    before = m.params["out.W"].copy()
    m.train_step(batch)
    assert not np.array_equal(m.params["out.W"], before)     # the step's values came back


def test_fit_stages_each_next_batch_and_trains_as_the_reference():
    """fit copies the next batch to the device while a step runs (Executor.stage): the
    staged arrays are the ones the step reads (a short last batch too), and the losses are
    the reference's."""
    path = os.path.join(SPECS, "xor_mlp.yaml")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.5]], float)
    data = {"x": x, "target": np.array([[0], [1], [1], [0], [1]], float)}
    m = nngraph.compile(path, backend="cuda", seed=0, dtype="float64")
    r = nngraph.compile(path, backend="reference", seed=0, dtype="float64")
    taken = []
    take = m.executor.staging.take
    m.executor.staging.take = lambda batch, views, names: taken.append(
        take(batch, views, names)) or taken[-1]
    hm = m.fit(data, epochs=2, batch_size=2, verbose=0)
    hr = r.fit(data, epochs=2, batch_size=2, verbose=0)
    np.testing.assert_allclose(hm["loss"], hr["loss"], rtol=1e-9)
    assert taken.count(True) == 4           # 3 steps an epoch: the 2nd and 3rd were staged
    for k in r.params:
        np.testing.assert_allclose(m.params[k], r.params[k], rtol=1e-9, err_msg=k)
