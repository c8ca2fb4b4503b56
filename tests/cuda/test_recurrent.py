"""rnn, gru and lstm on the device (nngraph/backends/cuda/lower/recurrent.py, kernels/cuda/
recurrent.py): their groups no longer run numpy rules on host copies; networks with them
give the reference backend's forward, gradients and optimizer steps; the kernels alone give
the ops' numpy rules from scratch buffers full of NaN. Shapes are tiny: the simulator runs
one Python thread per CUDA thread."""
import os
from types import SimpleNamespace

import numpy as np
import pytest
from numba import cuda

import nngraph
from nngraph.backends.cpu.calls import codegen, group_calls
from nngraph.backends.cuda.codegen import CUDACodegen
from nngraph.cli_tools import random_batch
from nngraph.kernels.cuda import recurrent
from nngraph.ops import REGISTRY
from nngraph.program import build_program

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = os.path.join(ROOT, "specs")
RECURRENT = {"rnn", "gru", "lstm"}

HEAD = """
nngraph: 1
name: tiny_{name}
inputs:
  x: {{shape: [3, 2]}}
  target: {{shape: [2]}}
layers:
"""
TAIL = """
  - {op: dense, name: out, units: 2}
outputs: [out]
losses:
  - {op: squared_error, in: [out, target]}
train:
  optimizer: {type: adam, lr: 0.01}
"""

NETS = {
    # every state out, through flatten; no bias; W frozen (no gW computed)
    "rnn": ["{op: rnn, name: r, units: 3, return_sequences: true, use_bias: false, "
            "lr_mult: {W: 0}}",
            "{op: flatten}"],
    # the LSTM's every state into a GRU (its last state): the GRU's input gradient and bu
    "lstm_gru": ["{op: lstm, name: l, units: 3, return_sequences: true}",
                 "{op: gru, name: g, units: 4}"],
    "lstm": ["{op: lstm, name: l, units: 3}"],
}


def _spec(tmp_path, name):
    text = HEAD.format(name=name) + "".join(f"  - {layer}\n" for layer in NETS[name]) + TAIL
    path = tmp_path / f"tiny_{name}.yaml"
    path.write_text(text)
    return str(path)


def _recurrent_groups_run_on_the_device(program, dtype="float64"):
    """Every group of a recurrent node is lowered (no numpy rule on host copies); the
    recurrent groups found."""
    gen = codegen(program, dtype, base=CUDACodegen)
    found = []
    for name, calls in group_calls(program, gen=gen).items():
        if program.graph.node(calls.group.anchor).op.name in RECURRENT:
            assert calls.runs == "hand-written", f"{name}: {calls.runs}"
            assert any(c.startswith("_recurrent.") for c in calls.callees), calls.callees
            found.append(name)
    return found


def _match(path, dtype, tol, steps=3, n=2):
    """Forward, gradients and `steps` Adam steps as the reference backend gives them."""
    m = nngraph.compile(path, backend="cuda", seed=0, dtype=dtype)
    r = nngraph.compile(path, backend="reference", seed=0, dtype=dtype)
    batch = random_batch(m.net, n, np.random.default_rng(1))
    features = {k: batch[k] for k in m.net.feature_inputs}
    got, want = m.predict(features), r.predict(features)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    gm, gr = m.gradients(batch), r.gradients(batch)
    assert set(gm) == set(gr)
    for k in gr:
        np.testing.assert_allclose(gm[k], gr[k], rtol=tol, atol=tol, err_msg=k)
    for _ in range(steps):
        assert m.train_step(batch) == pytest.approx(r.train_step(batch), rel=tol, abs=tol)
    for k in r.params:
        np.testing.assert_allclose(m.params[k], r.params[k], rtol=tol, atol=tol, err_msg=k)
    return m


@pytest.mark.parametrize("name,dtype,tol", [
    ("rnn", "float64", 1e-9), ("lstm_gru", "float64", 1e-9), ("lstm", "float32", 1e-4)])
def test_tiny_recurrent_networks_match_the_reference(tmp_path, name, dtype, tol):
    path = _spec(tmp_path, name)
    m = _match(path, dtype, tol)
    assert _recurrent_groups_run_on_the_device(m.program, dtype)
    assert not any(m.executor.gen.uses_reference(mode) for mode in m.executor.gen.drivers)


@pytest.mark.parametrize("spec", ["rnn_sequence.yaml", "gru_sequence.yaml",
                                  "lstm_sequence.yaml", "embedding_classifier.yaml"])
def test_the_recurrent_specs_run_their_recurrent_groups_on_the_device(spec):
    program = build_program(nngraph.load(os.path.join(SPECS, spec)))
    assert len(_recurrent_groups_run_on_the_device(program)) == 2      # forward, backward


def test_the_gru_spec_matches_the_reference_at_batch_2():
    """A spec as written (16 units, 6 steps): forward, gradients and one step (each step
    costs the simulator seconds)."""
    m = _match(os.path.join(SPECS, "gru_sequence.yaml"), "float64", 1e-9, steps=1)
    assert not m.executor.gen.uses_reference("train")


def _nan(*shape):
    """A device buffer holding NaN: the kernels must write before they read (an arena's
    scratch holds whatever its last user left)."""
    return cuda.to_device(np.full(shape, np.nan))


def _rule(kind, units, seq, x, p, gy):
    """The op's numpy rule: y, and the gradients of x and of each parameter from gy."""
    op, a, ctx = REGISTRY[kind], SimpleNamespace(units=units, return_sequences=seq), \
        SimpleNamespace(saved={})
    y = op.forward(ctx, a, [x], p)
    (gx,), gp = op.backward(ctx, a, [x], p, y, gy)
    return y, gx, gp


@pytest.mark.parametrize("kind,seq", [("rnn", False), ("gru", True), ("lstm", False)])
def test_the_kernels_match_the_ops_rules_from_scratch_full_of_nan(kind, seq):
    n, steps, f, h = 2, 3, 2, 3
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind] * h
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, steps, f))
    p = {"W": rng.standard_normal((f, g)), "U": rng.standard_normal((h, g)),
         "b": rng.standard_normal(g)} | ({"bu": rng.standard_normal(g)} if kind == "gru" else {})
    gy = rng.standard_normal((n, steps, h) if seq else (n, h))
    y, gx, gp = _rule(kind, h, seq, x, p, gy)
    dev = {k: cuda.to_device(v) for k, v in p.items()}
    saved = {"hs": _nan(steps + 1, n, h), "cs": _nan(steps + 1, n, h),
             "gates": _nan(steps, n, g), "un": _nan(steps, n, h)}
    saved = [saved[k] for k in {"rnn": ["hs"], "gru": ["hs", "gates", "un"],
                                "lstm": ["hs", "cs", "gates"]}[kind]]
    dx, dy = cuda.to_device(x), _nan(n, steps if seq else 1, h)
    biases = [dev["b"]] + ([dev["bu"]] if kind == "gru" else [])
    getattr(recurrent, f"{kind}_forward")(dx, dev["W"], dev["U"], *biases, dy,
                                          _nan(n, steps, g), _nan(n, g), *saved)
    np.testing.assert_allclose(dy.copy_to_host().reshape(y.shape), y, rtol=1e-12, atol=1e-12)
    grads = {k: _nan(*v.shape) for k, v in p.items()}
    dgx = _nan(*x.shape)
    getattr(recurrent, f"{kind}_backward")(
        dx, dev["W"], dev["U"], *saved, cuda.to_device(gy.reshape(dy.shape)), dgx,
        *[grads[k] for k in ("W", "U", "b", "bu") if k in grads],
        _nan(n, steps, g), _nan(steps, n, g), _nan(n, h),
        *([_nan(n, h)] if kind == "lstm" else []))
    np.testing.assert_allclose(dgx.copy_to_host(), gx, rtol=1e-12, atol=1e-12)
    for k, v in gp.items():
        np.testing.assert_allclose(grads[k].copy_to_host(), v, rtol=1e-12, atol=1e-12, err_msg=k)
