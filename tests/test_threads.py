"""A batch of a convolutional network runs as two halves on two threads (backends/cpu.py):
it computes what one thread and the reference backend compute."""
import os

import pytest

import nngraph
from nngraph.backends.cpu import executor as cpu_backend
from nngraph.backends.cpu import parallel
from nngraph.kernels.cpu import blas
from test_backends import close, random_batch, reported

SPECS = os.path.join(os.path.dirname(__file__), "..", "specs")
CONV = """
nngraph: 1
name: small_conv
inputs: {x: {shape: [1, 10, 10]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, filters: 3, kernel: 3, activation: relu}
  - {op: maxpool2d, size: 2}
  - {op: flatten}
  - {op: dense, units: 6, activation: tanh}
  - {op: dense, name: out, units: 4}
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""
N = 2 * cpu_backend.SPLIT_MIN + 3          # odd: halves of different sizes


def _models(monkeypatch, spec, dtype):
    models = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("NNGRAPH_THREADS", threads)
        models[threads] = nngraph.compile(spec, backend="cpu", dtype=dtype, seed=3)
    models["ref"] = nngraph.compile(spec, backend="reference", dtype=dtype, seed=3)
    return models


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_two_halves_compute_what_one_thread_computes(monkeypatch, dtype, rtol):
    models = _models(monkeypatch, CONV, dtype)
    for step in range(3):
        batch = random_batch(models["ref"].net, N, dtype, seed=step)
        results = {k: reported(m, batch) for k, m in models.items()}
        for k in ("1", "2"):
            assert results[k].keys() == results["ref"].keys()
            for key in results["ref"]:
                close(results[k][key], results["ref"][key], rtol)
    assert models["2"].executor.split_modes["train"]
    assert not models["1"].executor.split_modes["train"]
    for k in models["ref"].params:
        close(models["2"].params[k], models["ref"].params[k], rtol * 10)
        close(models["2"].params[k], models["1"].params[k], rtol * 10)
    batch = random_batch(models["ref"].net, N, dtype, seed=9)
    out = {k: m.predict(batch) for k, m in models.items()}
    close(out["2"], out["ref"], rtol)
    assert out["2"].shape == (N, 4)
    scores = {k: m.evaluate(batch) for k, m in models.items()}
    close(scores["2"]["loss"], scores["ref"]["loss"], rtol)
    assert scores["2"]["accuracy"] == scores["ref"]["accuracy"]
    grads = {k: m.gradients(batch) for k, m in models.items()}
    for name in grads["ref"]:
        close(grads["2"][name], grads["ref"][name], rtol * 10)
    assert models["2"].executor.split_modes == {m: True for m in ("train", "predict",
                                                                  "evaluate")}


@pytest.mark.skipif(blas.PER_THREAD, reason="dense networks split under OpenBLAS only")
def test_a_large_batch_of_a_dense_network_splits_under_openblas(monkeypatch):
    dense = CONV.replace("  - {op: conv2d, filters: 3, kernel: 3, activation: relu}\n"
                         "  - {op: maxpool2d, size: 2}\n", "")
    models = _models(monkeypatch, dense, "float64")
    n = parallel.DENSE_SPLIT_MIN + 1                # odd: halves of different sizes
    for step in range(2):
        batch = random_batch(models["ref"].net, n, "float64", seed=step)
        results = {k: reported(m, batch) for k, m in models.items()}
        for key in results["ref"]:
            close(results["2"][key], results["ref"][key], 1e-9)
    assert models["2"].executor.halves_for("train", n)
    for k in models["ref"].params:
        close(models["2"].params[k], models["ref"].params[k], 1e-8)


def test_networks_whose_results_depend_on_the_split_run_whole(monkeypatch):
    """Batchnorm averages over the batch: one thread for it; and for networks without
    convolutions, where MKL already uses both cores, while OpenBLAS's products stay on one
    thread and large batches split (DENSE_SPLIT_MIN). Dropout splits: each value's random
    number is drawn by its index in the whole batch (tests/test_lower_noise.py)."""
    monkeypatch.setenv("NNGRAPH_THREADS", "2")
    dense = CONV.replace("  - {op: conv2d, filters: 3, kernel: 3, activation: relu}\n"
                         "  - {op: maxpool2d, size: 2}\n", "")
    large = parallel.DENSE_SPLIT_MIN
    for spec, splits_large in ((dense, not blas.PER_THREAD),
                               (os.path.join(SPECS, "vgg_blocks.yaml"), False)):
        model = nngraph.compile(spec, backend="cpu", seed=0)
        model.train_step(random_batch(model.net, N, "float32"))
        assert not model.executor.halves_for("train", N), spec[:60]
        assert model.executor.halves_for("train", large) == splits_large, spec[:60]


def test_a_batch_splits_from_twice_split_min_on(monkeypatch):
    monkeypatch.setenv("NNGRAPH_THREADS", "2")
    model = nngraph.compile(CONV, backend="cpu", seed=0)
    for n, parts in ((2 * cpu_backend.SPLIT_MIN - 1, {0}), (2 * cpu_backend.SPLIT_MIN, {0, 1})):
        model.executor.bound = {}
        out = model.predict(random_batch(model.net, n, "float32"))
        assert out.shape == (n, 4)
        assert {key[2] for key in model.executor.bound} == parts, n


def test_threads_setting_is_checked(monkeypatch):
    monkeypatch.setenv("NNGRAPH_THREADS", "4")
    with pytest.raises(ValueError, match="NNGRAPH_THREADS='4': give 1, 2 or auto"):
        cpu_backend.threads()


def test_recurrent_network_halves_match(monkeypatch):
    spec = os.path.join(SPECS, "lstm_sequence.yaml")
    models = _models(monkeypatch, spec, "float64")
    batch = random_batch(models["ref"].net, N, "float64")
    losses = {k: m.train_step(batch) for k, m in models.items()}
    assert models["2"].executor.split_modes["train"]
    close(losses["2"], losses["ref"], 1e-9)
    for k in models["ref"].params:
        close(models["2"].params[k], models["ref"].params[k], 1e-8)
    close(models["2"].predict(batch), models["ref"].predict(batch), 1e-9)


def test_second_thread_returns_results_and_raises_errors():
    from nngraph.backends.cpu.parallel import second
    pair = second()
    assert pair.run_beside(lambda a: a * 2, 21, lambda: "mine") == ("mine", 42)

    def fails(_):
        raise ZeroDivisionError("in the second thread")
    with pytest.raises(ZeroDivisionError, match="in the second thread"):
        pair.run_beside(fails, None, lambda: 1)
    assert pair.run_beside(lambda a: a, 5, lambda: 6) == (6, 5)      # still serving


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_second_thread():
    from nngraph.backends.cpu.parallel import second
    assert second().run_beside(lambda a: a + 1, 1, lambda: 0) == (0, 2)
    pid = os.fork()
    if pid == 0:                                   # the child: exit status says it all
        ok = False
        try:
            ok = second().run_beside(lambda a: a + 1, 2, lambda: 0) == (0, 3)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_profile_times_whole_batches_and_puts_the_split_back(monkeypatch):
    """Timed kernels go to one table in call order: while profiled a batch runs whole."""
    from nngraph.cli_tools import KernelProfile
    monkeypatch.setenv("NNGRAPH_THREADS", "2")
    model = nngraph.compile(CONV, backend="cpu", seed=0)
    batch = random_batch(model.net, N, "float32")
    model.train_step(batch)
    assert model.executor.split_modes["train"]
    with KernelProfile(model) as profile:
        model.train_step(batch)
    assert model.executor.split_modes["train"]              # put back
    rows = profile.rows                        # (kernel, group) -> [calls, seconds, kind]
    assert rows and all(group != "?" for (_, group) in rows), rows
    driver_rows = {k: v for k, v in rows.items() if k[1] != "-"}     # not the update
    assert all(calls == 1 for calls, _, _ in driver_rows.values()), rows
    assert "one thread" in profile.report(1.0, 1)[0]
