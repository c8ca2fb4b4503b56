"""The CPU lowerings of concat and multiply against the reference backend: forward, evaluate,
gradients, three optimizer steps (float64 to 1e-9, float32 to 1e-4), over axes (channels of
convolutions, rows, the last axis, negative), two and three inputs, one input twice, inputs
that need no gradient, gradients reaching a network input, zeros in a product; and what each
group runs."""
import numpy as np
import pytest

import nngraph
from nngraph.backends.cpu.calls import codegen, group_calls
from nngraph.program import build_program
from test_backends import close, random_batch
from test_lower_softmax import DTYPES, input_gradients, matches_reference

# m's concat comes first, so that its backward runs last and m's gradient is final when a
# run ends (input_gradients reads it from the arena, input by input)
CONCAT = """
nngraph: 1
name: concats
inputs: {x: {shape: [6]}, m: {shape: [2, 3]}, img: {shape: [1, 5, 5]},
         label: {shape: [], dtype: int64}}
layers:
  - {op: concat, name: mm, in: [m, m], axis: 1}          # one input twice, the last axis
  - {op: flatten, name: f0}
  - {op: dense, name: a, in: x, units: 6, activation: tanh}
  - {op: reshape, name: a2, shape: [2, 3]}
  - {op: dense, name: b, in: x, units: 9}
  - {op: reshape, name: b3, shape: [3, 3]}
  - {op: concat, name: rows, in: [a2, b3, m]}            # axis 0; m needs no gradient
  - {op: concat, name: cols, in: [a2, m], axis: -1}
  - {op: concat, name: flat, in: [x, a]}                 # vectors
  - {op: conv2d, name: c1, in: img, filters: 2, kernel: 3, padding: same, activation: relu}
  - {op: conv2d, name: c2, in: img, filters: 3, kernel: 1}
  - {op: concat, name: chans, in: [c1, c2, img]}         # channels, as an Inception module
  - {op: concat, name: wide, in: [c1, c1], axis: 2}      # the width of NCHW
  - {op: flatten, name: f1, in: rows}
  - {op: flatten, name: f2, in: cols}
  - {op: flatten, name: f3, in: chans}
  - {op: flatten, name: f4, in: wide}
  - {op: dense, name: d0, in: f0, units: 3}
  - {op: dense, name: d1, in: f1, units: 3}
  - {op: dense, name: d2, in: f2, units: 3}
  - {op: dense, name: d3, in: flat, units: 3}
  - {op: dense, name: d4, in: f3, units: 3}
  - {op: dense, name: d5, in: f4, units: 3}
  - {op: add, name: logits, in: [d0, d1, d2, d3, d4, d5]}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

MULTIPLY = """
nngraph: 1
name: products
inputs: {x: {shape: [6]}, m: {shape: [2, 3]}, label: {shape: [], dtype: int64}}
layers:
  - {op: multiply, name: mx, in: [m, m, m]}              # one input three times
  - {op: flatten, name: fm}
  - {op: dense, name: a, in: x, units: 6, activation: tanh}
  - {op: dense, name: b, in: x, units: 6}
  - {op: dense, name: c, in: x, units: 6, activation: sigmoid}
  - {op: multiply, name: ab, in: [a, b]}
  - {op: multiply, name: abc, in: [a, b, c]}
  - {op: multiply, name: aa, in: [a, a]}
  - {op: multiply, name: cx, in: [c, x]}                 # x needs no gradient
  - {op: reshape, name: ab2, in: ab, shape: [2, 3]}
  - {op: multiply, name: abm, in: [ab2, m]}              # [2, 3] per sample
  - {op: flatten, name: f, in: abm}
  - {op: add, name: s, in: [ab, abc, aa, cx, f, fm]}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

SPECS = {"concat": CONCAT, "multiply": MULTIPLY}


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("name", SPECS)
def test_cpu_matches_reference(name, dtype, rtol):
    matches_reference(SPECS[name], dtype, rtol)


@pytest.mark.parametrize("name", SPECS)
def test_gradients_reach_a_network_input(name):
    for k in ("m", "x"):
        got, want = input_gradients(SPECS[name], [k])
        assert np.abs(want[k]).max() > 1e-3
        close(got[k], want[k], 1e-8)


def test_a_product_with_zeros_has_the_gradients_of_the_others():
    """gx_j is gy times the other inputs, not y / x_j: finite where x_j is 0."""
    ref = nngraph.compile(MULTIPLY, backend="reference", dtype="float64", seed=1)
    batch = random_batch(ref.net, 5, "float64")
    batch["m"][:2] = 0
    batch["m"][3, 1] = 0
    got, want = input_gradients(MULTIPLY, ["m"], batch=batch)
    assert np.isfinite(got["m"]).all()
    close(got["m"], want["m"], 1e-8)
    assert np.abs(got["m"][:2]).max() > 1e-6         # (m is 0 there: y / m would be 0/0)


def _calls(spec):
    program = build_program(nngraph.load(spec))
    gen = codegen(program)
    return gen, group_calls(program, gen=gen)


@pytest.mark.parametrize("name", SPECS)
def test_no_group_runs_a_numpy_rule(name):
    _, calls = _calls(SPECS[name])
    assert not [g for g, c in calls.items() if c.runs == "reference"], calls


def test_what_each_group_runs():
    """Generated copies for concat, one kernel both ways for as many parts, whatever the
    shapes and axes; a multiply's backward forms every input's gradient in one kernel, one
    kernel for as many inputs and gradients."""
    _, calls = _calls(CONCAT)
    kernel = {name: c.kernels for name, c in calls.items() if c.runs == "generated"}
    assert kernel["rows"] == kernel["chans"]                               # three parts
    assert kernel["mm"] == kernel["cols"] == kernel["flat"] == kernel["wide"] \
        == kernel["d_wide"] == kernel["d_chans"] == kernel["d_rows"]      # two
    assert kernel["d_flat"] == kernel["d_cols"] != kernel["mm"]            # one: x, m left out
    assert "d_mm" not in calls                              # m needs no gradient
    assert calls["d_wide"].callees[-1] == "_add_into"       # c1's second part
    gen, calls = _calls(MULTIPLY)
    assert calls["ab"].kernels == calls["aa"].kernels == calls["cx"].kernels \
        == calls["abm"].kernels
    assert calls["mx"].kernels == calls["abc"].kernels != calls["ab"].kernels
    assert calls["d_abc"].runs == "generated"
    assert calls["d_abc"].callees[1:] == ["_add_into", "_add_into"]   # a and b: second
    assert "d_mx" not in calls
    assert calls["d_cx"].kernels == calls["d_abm"].kernels   # one gradient each: c, ab2
    cx = gen.kernels[calls["d_cx"].kernels[0]]
    assert "gx0f[i] = gyf[i] * x1f[i]" in cx and "gx1" not in cx
