"""dropout and gaussian_noise on the CPU backend (backends/cpu/lower/dropout.py,
gaussian_noise.py): the counter-based random stream gives the same bits in numpy
(nngraph/random_stream.py, the reference rules) and in the kernels (kernels/cpu/
random_stream.py); the fused kernels compute what the reference computes, on one thread or
on two halves of a batch; evaluation is the identity; dropout drops the expected fraction."""
import os

import numba
import numpy as np
import pytest

import nngraph
from nngraph import random_stream
from nngraph.backends.cpu import executor as cpu_backend
from nngraph.backends.cpu.calls import codegen, group_calls
from nngraph.kernels.cpu import random_stream as kernel_stream
from nngraph.ops import REGISTRY, RunContext, make_attrs
from nngraph.program import build_program
from test_backends import close, random_batch

SPECS = os.path.join(os.path.dirname(__file__), "..", "specs")


@numba.njit
def _draw(words, node, first, n, stddev):
    """What a kernel draws for counters first .. first + n - 1 of node `node`."""
    key = kernel_stream.node_key(words, node)
    u, z = np.empty(n), np.empty(n)
    for i in range(n):
        u[i] = kernel_stream.uniform(key, first + i)
        z[i] = kernel_stream.normal(key, first + i, stddev)
    return u, z


@pytest.mark.parametrize("seed,step,node,first", [(0, 0, 0, 0), (1, 7, 3, 1000),
                                                  (2 ** 64 - 1, 123_456, 11, 2 ** 40)])
def test_the_kernels_draw_the_bits_numpy_draws(seed, step, node, first):
    n = 100_000
    u, z = _draw(np.array([seed, step, 0], np.uint64), node, first, n, 0.3)
    key = random_stream.key([seed, step, node])
    assert key == random_stream.key_of(np.random.default_rng([seed, step, node]))
    counters = np.arange(first, first + n, dtype=np.uint64)
    np.testing.assert_array_equal(u, random_stream.uniform(key, counters))
    want = random_stream.normal(key, counters, 0.3)
    np.testing.assert_array_equal(z, want)
    np.testing.assert_array_equal(z.astype(np.float32), want.astype(np.float32))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    assert abs(z.mean()) < 0.005 and abs(z.std() - 0.3) < 0.005


def test_the_stream_s_own_ln_and_cos_are_accurate():
    v = np.random.default_rng(0).random(200_000)
    v[:3] = [2.0 ** -53, 0.5, 1.0]
    np.testing.assert_allclose(random_stream._log(v), np.log(v), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(random_stream._cos_2pi(v), np.cos(2 * np.pi * v), atol=1e-15)


def test_streams_differ_by_seed_step_and_node():
    c = random_stream.counters((1000,))
    draws = [random_stream.uniform(random_stream.key(w), c)
             for w in ([0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1])]
    for i in range(len(draws)):
        for j in range(i):
            assert (draws[i] != draws[j]).mean() > 0.99


NET = """
nngraph: 1
name: noise_net
inputs: {x: {shape: [12]}, u: {shape: [8]}, label: {shape: [], dtype: int64}}
layers:
  - {op: gaussian_noise, name: noisy, stddev: STDDEV}
  - {op: dense, name: h, units: 8, activation: tanh}
  - {op: dropout, name: drop, rate: RATE}
  - {op: dense, name: out, units: 4}
  - {op: dense, name: guess, in: u, units: 12}
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
  # so that a step returns noisy's values, x plus the noise alone
  - {op: squared_error, in: [noisy, guess], weight: 0.25}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


def _net(rate, stddev):
    return NET.replace("RATE", str(rate)).replace("STDDEV", str(stddev))


def _step(model, batch):
    """(loss, {loss input: values}) of one training step."""
    return model._train_batch(model._batch(batch, True, "train"))


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
@pytest.mark.parametrize("rate,stddev", [(0.1, 0.5), (0.5, 2.0)])
def test_cpu_draws_and_trains_as_the_reference(rate, stddev, dtype, rtol):
    spec = _net(rate, stddev)
    cpu = nngraph.compile(spec, backend="cpu", dtype=dtype, seed=5)
    ref = nngraph.compile(spec, backend="reference", dtype=dtype, seed=5)
    assert not cpu.executor.uses_reference["train"]
    for step in range(3):
        batch = random_batch(cpu.net, 6, dtype, seed=step)
        (loss_c, vc), (loss_r, vr) = _step(cpu, batch), _step(ref, batch)
        close(loss_c, loss_r, rtol)
        np.testing.assert_array_equal(vc["noisy"], vr["noisy"])    # to the last bit
        close(vc["out"], vr["out"], rtol)
    for k in ref.params:
        close(cpu.params[k], ref.params[k], rtol * 10)
    g_c, g_r = cpu.gradients(batch), ref.gradients(batch)
    for k in g_r:
        close(g_c[k], g_r[k], rtol * 10)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_drops_the_expected_fraction(rate):
    spec = f"""
nngraph: 1
name: wide_dropout
inputs: {{x: {{shape: [5000]}}, t: {{shape: [5000]}}}}
layers:
  - {{op: dropout, name: drop, rate: {rate}}}
losses:
  - {{op: squared_error, in: [drop, t]}}
"""
    model = nngraph.compile(spec, backend="cpu", seed=0)
    op = REGISTRY["dropout"]
    attrs = make_attrs(op, rate=rate)
    x = np.full((40, 5000), 3.0, np.float32)
    masks = []
    for step in range(2):
        _, values = _step(model, {"x": x, "t": x})
        y = values["drop"]
        assert abs((y == 0).mean() - rate) < 0.005
        np.testing.assert_array_equal(y[y != 0], np.float32(3.0) / np.float32(1 - rate))
        # the reference rule with the generator the reference backend would give node 0
        ctx = RunContext(rng=np.random.default_rng([0, step, 0]))
        np.testing.assert_array_equal(y, op.forward(ctx, attrs, [x], {}))
        masks.append(y == 0)
    assert (masks[0] != masks[1]).any()            # a new mask each step


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluation_and_predict_are_the_identity(dtype):
    """Noise on an input is a copy (the input is the caller's array), on a layer's output
    a view (nothing runs)."""
    spec = """
nngraph: 1
name: noise_outputs
inputs: {x: {shape: [6]}, t: {shape: [6]}}
layers:
  - {op: gaussian_noise, name: noisy, stddev: 1.0}
  - {op: dense, name: h, units: 6}
  - {op: dropout, name: drop, rate: 0.5}
  - {op: dropout, name: side, in: h, rate: 0.3}        # read by no loss
outputs: [noisy, h, drop, side]
losses:
  - {op: squared_error, in: [drop, t]}
"""
    model = nngraph.compile(spec, backend="cpu", dtype=dtype, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(dtype)
    out = model.predict(x)
    np.testing.assert_array_equal(out["noisy"], x)
    np.testing.assert_array_equal(out["drop"], out["h"])
    model.train_step({"x": x, "t": x})
    out2 = model.predict(x)
    np.testing.assert_array_equal(out2["noisy"], x)
    np.testing.assert_array_equal(out2["drop"], out2["h"])
    np.testing.assert_array_equal(out2["side"], out2["h"])
    ref = nngraph.compile(spec, backend="reference", dtype=dtype, seed=0)
    ref.train_step({"x": x, "t": x})
    assert model.evaluate({"x": x, "t": x})["loss"] == \
        pytest.approx(ref.evaluate({"x": x, "t": x})["loss"], rel=1e-5)
    gen = codegen(build_program(model.net), dtype)
    runs = {mode: {g.name: lines for g, lines, _ in gen.emitted[mode]}
            for mode in ("evaluate", "predict")}
    for mode, groups in runs.items():
        assert groups["drop"] == ["# v_drop: a view of v_h (no copy)"], mode
        assert "_random_stream." not in gen.drivers[mode]


@pytest.mark.parametrize("spec", ["mnist_mlp_dropout.yaml", "denoising_autoencoder.yaml"])
def test_example_specs_run_no_numpy_rule(spec):
    calls = group_calls(build_program(nngraph.load(os.path.join(SPECS, spec))))
    assert {c.runs for c in calls.values()} <= {"generated", "view"}, \
        {name: c.describe() for name, c in calls.items()}


CONV = """
nngraph: 1
name: noisy_conv
inputs: {x: {shape: [1, 6, 6]}, t: {shape: [36]}, label: {shape: [], dtype: int64}}
layers:
  - {op: gaussian_noise, name: noisy, stddev: 0.5}
  - {op: dropout, name: drop, rate: 0.5}
  - {op: conv2d, filters: 2, kernel: 3, activation: relu}
  - {op: flatten}
  - {op: dropout, name: drop2, rate: 0.3}
  - {op: dense, name: out, units: 3}
  - {op: flatten, name: dropped, in: drop}
  - {op: dense, name: guess, in: t, units: 36}
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
  # so that a step returns drop's values, x and the random numbers alone
  - {op: squared_error, in: [dropped, guess]}
train: {optimizer: {type: sgd, lr: 0.1}}
"""


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_two_halves_draw_what_one_thread_draws(monkeypatch, dtype, rtol):
    """Each value's random number is drawn by its index in the whole batch: the second
    half's counters start where the first's end."""
    models = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("NNGRAPH_THREADS", threads)
        models[threads] = nngraph.compile(CONV, backend="cpu", dtype=dtype, seed=3)
    models["ref"] = nngraph.compile(CONV, backend="reference", dtype=dtype, seed=3)
    n = 2 * cpu_backend.SPLIT_MIN + 3                   # odd: halves of different sizes
    for step in range(3):
        batch = random_batch(models["ref"].net, n, dtype, seed=step)
        results = {k: _step(m, batch) for k, m in models.items()}
        np.testing.assert_array_equal(results["2"][1]["dropped"], results["1"][1]["dropped"])
        np.testing.assert_array_equal(results["2"][1]["dropped"] == 0,
                                      results["ref"][1]["dropped"] == 0)
        for k in ("1", "2"):
            close(results[k][0], results["ref"][0], rtol)
            close(results[k][1]["dropped"], results["ref"][1]["dropped"], rtol)
            close(results[k][1]["out"], results["ref"][1]["out"], rtol)
    assert models["2"].executor.split_modes["train"]
    assert not models["1"].executor.split_modes["train"]
    for k in models["ref"].params:
        close(models["2"].params[k], models["1"].params[k], rtol * 10)
        close(models["2"].params[k], models["ref"].params[k], rtol * 10)


def test_a_fastmath_kernel_compiling_the_stream_first_changes_no_bit(tmp_path):
    """numba gives a callee the caller's fastmath where the callee leaves it unset; the
    stream's helpers say fastmath=False, so the first kernel to compile them (a generated,
    fastmath one) does not decide their bits. In a fresh process and cache, a fastmath
    caller compiles them first; the bits are then numpy's."""
    import subprocess
    import sys
    script = tmp_path / "first.py"
    script.write_text(
        "import numba, numpy as np\n"
        "from nngraph import random_stream\n"
        "from nngraph.kernels.cpu import random_stream as ks\n"
        "@numba.njit(fastmath=True)\n"
        "def draw(words, n):\n"
        "    key = ks.node_key(words, 3)\n"
        "    z = np.empty(n)\n"
        "    for i in range(n):\n"
        "        z[i] = ks.normal(key, i, 0.3) + 0.0 * ks.uniform(key, i)\n"
        "    return z\n"
        "z = draw(np.array([1, 7, 0], np.uint64), 20000)\n"
        "want = random_stream.normal(random_stream.key([1, 7, 3]),\n"
        "                            np.arange(20000, dtype=np.uint64), 0.3)\n"
        "print(int((z != want).sum()))\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0"
