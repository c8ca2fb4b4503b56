"""The CPU lowerings of avgpool2d, global_avgpool2d, upsample2d and maxpool1d against the
reference backend: forward, gradients, three optimizer steps (float64 to 1e-9, float32 to
1e-4), over padding, stride and size variants, beside activations and frozen layers; and
what each group runs (hand-written kernels or generated ones, no numpy rule)."""
import numpy as np
import pytest

import nngraph
from nngraph.backends.cpu.calls import group_calls
from nngraph.program import build_program
from test_backends import matches_reference

DTYPES = [("float64", 1e-9), ("float32", 1e-4)]

AVGPOOL = """
nngraph: 1
name: avgpools
inputs: {x: {shape: [2, 7, 6]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, name: c1, filters: 3, kernel: 3, padding: same, activation: relu}
  - {op: avgpool2d, name: p1, size: 2}
  - {op: avgpool2d, name: p2, in: c1, size: 3, stride: 2, padding: same, activation: tanh}
  - {op: avgpool2d, name: p3, in: c1, size: [3, 2], stride: [1, 2], padding: [1, 1]}
  - {op: avgpool2d, name: p4, in: x, size: [2, 3], stride: [3, 1]}
  - {op: conv2d, name: c2, in: p3, filters: 2, kernel: 1, activation: elu}
  - {op: flatten, name: f1, in: p1}
  - {op: flatten, name: f2, in: p2}
  - {op: flatten, name: f3, in: c2}
  - {op: flatten, name: f4, in: p4}
  - {op: dense, name: h1, in: f1, units: 4}
  - {op: dense, name: h2, in: f2, units: 4}
  - {op: dense, name: h3, in: f3, units: 4}
  - {op: dense, name: h4, in: f4, units: 4}
  - {op: add, name: logits, in: [h1, h2, h3, h4]}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

GLOBAL_AND_UPSAMPLE = """
nngraph: 1
name: global_upsample
inputs: {x: {shape: [2, 5, 4]}, t: {shape: [3]}}
layers:
  - {op: conv2d, name: c1, filters: 3, kernel: 3, padding: same, activation: sigmoid}
  - {op: upsample2d, name: u1, size: [2, 3]}
  - {op: conv2d, name: c2, filters: 2, kernel: 3, stride: 2}
  - {op: upsample2d, name: u2, activation: relu}
  - {op: global_avgpool2d, name: g1}
  - {op: global_avgpool2d, name: g2, in: c1}
  - {op: upsample2d, name: u3, in: x, size: 3}
  - {op: global_avgpool2d, name: g3, in: u3}
  - {op: dense, name: h1, in: g1, units: 3}
  - {op: dense, name: h2, in: g2, units: 3, activation: tanh}
  - {op: dense, name: h3, in: g3, units: 3}
  - {op: add, name: out, in: [h1, h2, h3]}
outputs: [out]
losses:
  - {op: squared_error, in: [out, t]}
"""

MAXPOOL1D = """
nngraph: 1
name: maxpools1d
inputs: {x: {shape: [6]}, s: {shape: [2, 9]}, label: {shape: [], dtype: int64}}
layers:
  - {op: dense, name: d1, in: x, units: 57, activation: tanh}
  - {op: reshape, name: r1, shape: [3, 19]}
  - {op: maxpool1d, name: p1, size: 2}
  - {op: maxpool1d, name: p2, in: r1, size: 3, stride: 2, padding: 1}
  - {op: maxpool1d, name: p3, in: r1, size: 3, stride: 1, padding: same, activation: relu}
  - {op: maxpool1d, name: p4, in: r1, size: 17, stride: 2}
  - {op: maxpool1d, name: p5, in: r1, size: 4, stride: 3}
  - {op: maxpool1d, name: p6, in: s, size: 2, stride: 1}
  - {op: flatten, name: f1, in: p1}
  - {op: flatten, name: f2, in: p2}
  - {op: flatten, name: f3, in: p3}
  - {op: flatten, name: f4, in: p4}
  - {op: flatten, name: f5, in: p5}
  - {op: flatten, name: f6, in: p6}
  - {op: dense, name: h1, in: f1, units: 4}
  - {op: dense, name: h2, in: f2, units: 4}
  - {op: dense, name: h3, in: f3, units: 4}
  - {op: dense, name: h4, in: f4, units: 4}
  - {op: dense, name: h5, in: f5, units: 4}
  - {op: dense, name: h6, in: f6, units: 4}
  - {op: add, name: logits, in: [h1, h2, h3, h4, h5, h6]}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

FROZEN = """
nngraph: 1
name: frozen_pools
inputs: {x: {shape: [2, 6, 6]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, name: c1, filters: 3, kernel: 3, padding: same, activation: relu,
     trainable: false}
  - {op: avgpool2d, name: p1, size: 2}
  - {op: upsample2d, name: u1}
  - {op: global_avgpool2d, name: g1}
  - {op: reshape, name: r1, in: p1, shape: [3, 9]}
  - {op: maxpool1d, name: m1, size: 3}
  - {op: flatten, name: f1}
  - {op: dense, name: h1, in: g1, units: 4, trainable: false}
  - {op: dense, name: h2, in: f1, units: 4}
  - {op: add, name: logits, in: [h1, h2]}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

SPECS = {"avgpool2d": AVGPOOL, "global_upsample": GLOBAL_AND_UPSAMPLE,
         "maxpool1d": MAXPOOL1D, "frozen": FROZEN}


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("name", SPECS)
def test_cpu_matches_reference(name, dtype, rtol):
    matches_reference(SPECS[name], dtype, rtol)


def _runs(spec):
    program = build_program(nngraph.load(spec))
    return {name: (calls.runs, calls.callees) for name, calls in group_calls(program).items()}


@pytest.mark.parametrize("name", SPECS)
def test_no_group_runs_a_numpy_rule(name):
    runs = _runs(SPECS[name])
    assert not [g for g, (how, _) in runs.items() if how == "reference"], runs


def test_what_each_pool_runs():
    runs = _runs(AVGPOOL)
    assert runs["p1"] == ("hand-written", ["_pool.avgpool2d_forward"])
    assert runs["d_p3"] == ("hand-written", ["_pool.avgpool2d_backward"])
    assert "d_p4" not in runs                      # the input needs no gradient
    runs = _runs(GLOBAL_AND_UPSAMPLE)
    assert runs["u1"] == ("hand-written", ["_pool.upsample2d_forward"])
    assert runs["d_u1"] == ("hand-written", ["_pool.upsample2d_backward", "_add_into"])
    assert runs["g1"] == ("hand-written", ["_pool.global_avgpool2d_forward"])
    assert runs["d_g2"] == ("hand-written", ["_pool.global_avgpool2d_backward"])
    runs = _runs(MAXPOOL1D)
    assert runs["p1"][0] == "generated"            # unrolled: no padding, a small window
    assert runs["p2"] == ("hand-written", ["_pool.maxpool2d_forward"])    # padded
    assert runs["p4"] == ("hand-written", ["_pool.maxpool2d_forward"])    # a wide window
    # (the last of several gradients to reach r1 is added to the others)
    assert runs["d_p1"][1][0] == "_pool.maxpool2d_backward"
    assert "d_p6" not in runs


def test_one_kernel_serves_pools_of_one_geometry():
    """Geometry is passed to the hand-written kernels and read off the arrays in the
    unrolled ones: two maxpool1d layers of one window and stride on different lengths and
    channels share one generated kernel."""
    spec = """
nngraph: 1
name: twins
inputs: {x: {shape: [2, 12]}}
layers:
  - {op: maxpool1d, name: a, size: 2}
  - {op: reshape, name: r, shape: [3, 4]}
  - {op: maxpool1d, name: b, size: 2}
"""
    gen = nngraph.compile(spec, backend="cpu", dtype="float64").executor.gen
    assert gen.drivers["predict"].count("k_maxpool1d_value(") == 2, gen.drivers["predict"]


def test_unrolled_maxpool1d_keeps_the_reference_rules_for_ties_and_nan():
    """The first maximum wins, and the first NaN beats everything, as numpy's argmax."""
    from nngraph.kernels.cpu import pool
    from nngraph.ops import REGISTRY, RunContext, make_attrs
    spec = """
nngraph: 1
name: pool1d
inputs: {x: {shape: [3, 12]}, t: {shape: [3, 4]}}
layers:
  - {op: maxpool1d, name: p, size: 3}
losses:
  - {op: squared_error, in: [p, t]}
"""
    module = nngraph.compile(spec, backend="cpu", dtype="float64").executor.module
    x = np.round(np.random.default_rng(0).random((4, 3, 12)) * 2)       # many ties
    x[0, 0, 1] = x[1, 2, 4] = x[1, 2, 5] = x[2, 1, 11] = np.nan
    y, arg = np.zeros((4, 3, 4)), np.zeros((4, 3, 1, 4), np.int64)
    module.k_p(x, y, arg)
    op = REGISTRY["maxpool1d"]
    attrs = make_attrs(op, size=3)
    ctx = RunContext()
    with np.errstate(invalid="ignore"):
        want = op.forward(ctx, attrs, [x], {})
    np.testing.assert_array_equal(y, want)
    value_only = np.zeros_like(y)
    module.k_p_value(x, value_only)
    np.testing.assert_array_equal(value_only, want)
    g = np.random.default_rng(1).random(y.shape)
    (gx_want,), _ = op.backward(ctx, attrs, [x], {}, want, g)
    gx = np.zeros_like(x)
    pool.maxpool2d_backward(g[:, :, None], arg, gx[:, :, None])
    np.testing.assert_array_equal(gx, gx_want)
