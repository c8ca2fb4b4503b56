"""The CPU lowerings of softmax, log_softmax and softmax_cross_entropy against the reference
backend: forward, evaluate, gradients, three optimizer steps (float64 to 1e-9, float32 to
1e-4), as a layer's activation and as layers of their own over rows of a matrix, the loss on
class indices and on probability rows with sum and mean reductions and weights, two losses
and a layer on the same logits, gradients reaching a network input; and what each group
runs."""
import numpy as np
import pytest

import nngraph
from nngraph.backends import executor
from nngraph.backends.cpu.calls import codegen, group_calls
from nngraph.program import build_program
from test_backends import close, matches_reference, random_batch

DTYPES = [("float64", 1e-9), ("float32", 1e-4)]

# m's softmax and log_softmax come first, so that their backward runs last and m's gradient
# is final when a run ends (input_gradients reads it from the arena, input by input).
SOFTMAX = """
nngraph: 1
name: softmaxes
inputs:
  x: {shape: [6]}
  m: {shape: [3, 4]}
  t: {shape: [5]}
  label: {shape: [], dtype: int64}
layers:
  - {op: softmax, name: m_rows, in: m}                 # a softmax per row of 4
  - {op: log_softmax, name: m_logp, in: m}
  - {op: add, name: m_both, in: [m_rows, m_logp]}
  - {op: flatten, name: m_flat}
  - {op: dense, name: probs, in: x, units: 5, activation: softmax}
  - {op: dense, name: pre, in: x, units: 12}
  - {op: reshape, name: grid, shape: [3, 4]}
  - {op: softmax, name: rows}
  - {op: log_softmax, name: logp, in: grid}
  - {op: flatten, name: f1, in: rows}
  - {op: flatten, name: f2, in: logp}
  - {op: dense, name: h, in: x, units: 5, activation: log_softmax}
  - {op: dense, name: d1, in: f1, units: 5}
  - {op: dense, name: d2, in: f2, units: 5}
  - {op: dense, name: d3, in: m_flat, units: 5}
  - {op: add, name: logits, in: [d1, d2, d3, h]}
outputs: [probs, logits]
losses:
  - {op: squared_error, in: [probs, t]}
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

# class indices and probability rows, sum and mean, weights; the logits `a` reach two losses
# and a layer, whose gradients add up
LOSSES = """
nngraph: 1
name: xents
inputs: {x: {shape: [6]}, t: {shape: [5]}, label: {shape: [], dtype: int64}}
layers:
  - {op: dense, name: a, in: x, units: 5}
  - {op: dense, name: b, in: x, units: 5, activation: tanh}
  - {op: dense, name: c, in: a, units: 5}
outputs: [a, b]
losses:
  - {op: softmax_cross_entropy, in: [a, t], reduction: sum, weight: 0.5}
  - {op: softmax_cross_entropy, in: [a, label]}
  - {op: softmax_cross_entropy, in: [b, label], reduction: sum, weight: 2.0}
  - {op: softmax_cross_entropy, in: [c, t]}
"""

SPECS = {"softmax": SOFTMAX, "losses": LOSSES}


def input_gradients(spec, wrt, dtype="float64", batch=None):
    """{input: d loss / d input} of the CPU backend (read from its arena after a training
    run of the program that differentiates `wrt` too) and of the reference."""
    ref = nngraph.compile(spec, backend="reference", dtype=dtype, seed=1)
    batch = batch or random_batch(ref.net, 5, dtype)
    want = ref.input_gradients(batch, wrt=wrt)
    run = executor(build_program(ref.net, None, wrt), "cpu", ref.dtype)
    _, views = run._backprop(ref.params, ref._state_copy(), ref._batch(batch, True), [1, 0])
    buffers = run.gen.plans["train"][0]
    got = {}
    for k in wrt:
        mine = next(b for b in buffers if b.name == f"g_{k}")
        # nothing written after the gradient's last use may take its place in the arena
        assert not [b for b in buffers if b.first > mine.last and b.kind == mine.kind
                    and b.offset < mine.offset + mine.size
                    and mine.offset < b.offset + b.size], k
        got[k] = np.array(views[f"g_{k}"])
    return got, want


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("name", SPECS)
def test_cpu_matches_reference(name, dtype, rtol):
    matches_reference(SPECS[name], dtype, rtol)


def test_gradients_reach_a_network_input():
    for k in ("m", "x"):
        got, want = input_gradients(SOFTMAX, [k])
        assert np.abs(want[k]).max() > 1e-3
        close(got[k], want[k], 1e-8)


def _runs(spec):
    program = build_program(nngraph.load(spec))
    return {name: (calls.runs, calls.callees) for name, calls in group_calls(program).items()}


@pytest.mark.parametrize("name", SPECS)
def test_no_group_runs_a_numpy_rule(name):
    runs = _runs(SPECS[name])
    assert not [g for g, (how, _) in runs.items() if how == "reference"], runs


def test_what_each_group_runs():
    """softmax and log_softmax, as activations and as layers, on the hand-written kernels
    (never fused into the layer before them: they are reductions); the loss on class indices
    and on probabilities in one generated kernel each, the latter around the hand-written
    softmax_cross_entropy_probs."""
    runs = _runs(SOFTMAX)
    assert runs["probs"][0] == "generated"                        # the dense layer alone
    assert runs["probs_softmax"] == ("hand-written", ["_softmax.softmax_forward"])
    assert runs["d_probs_softmax"] == ("hand-written", ["_softmax.softmax_backward"])
    assert runs["h_log_softmax"] == ("hand-written", ["_softmax.log_softmax_forward"])
    assert runs["d_h_log_softmax"] == ("hand-written", ["_softmax.log_softmax_backward"])
    assert runs["rows"] == ("hand-written", ["_softmax.softmax_forward"])
    assert runs["logp"] == ("hand-written", ["_softmax.log_softmax_forward"])
    assert runs["d_logp"] == ("hand-written", ["_softmax.log_softmax_backward"])
    assert runs["d_rows"] == ("hand-written", ["_softmax.softmax_backward", "_add_into"])
    assert "d_m_rows" not in runs                                 # m needs no gradient
    program = build_program(nngraph.load(LOSSES))
    gen = codegen(program, "float64")
    calls = group_calls(program, gen=gen)
    probs = calls["loss_1"].kernels[0]
    assert "_softmax.softmax_cross_entropy_probs(" in gen.kernels[probs]
    classes = calls["loss_2"].kernels[0]
    assert "_softmax." not in gen.kernels[classes]
    # every loss on class indices shares one kernel, whatever its weight and reduction
    assert calls["loss_3"].kernels == [classes]
    assert calls["loss_4"].kernels == [probs]
    # a's second gradient (loss_2's) goes to a scratch buffer added in after
    assert calls["loss_2"].callees == [classes, "_add_into"]


def test_the_row_maximum_keeps_exp_from_overflowing():
    """Logits in the hundreds (exp of them overflows float32) give the reference's loss and
    gradients."""
    for dtype, rtol in DTYPES:
        cpu = nngraph.compile(LOSSES, backend="cpu", dtype=dtype, seed=1)
        ref = nngraph.compile(LOSSES, backend="reference", dtype=dtype, seed=1)
        batch = random_batch(cpu.net, 4, dtype)
        batch["x"] = batch["x"] * 300
        for k, v in ref.params.items():
            cpu.params[k][...] = v
        out = ref.predict(batch)
        assert np.abs(out["a"]).max() > 100
        close(cpu.evaluate(batch)["loss"], ref.evaluate(batch)["loss"], rtol)
        g_c, g_r = cpu.gradients(batch), ref.gradients(batch)
        for k in g_r:
            assert np.isfinite(g_c[k]).all()
            close(g_c[k], g_r[k], rtol * 10)
