"""The CPU lowerings of conv2d_transpose and conv1d against the reference backend: forward,
gradients, three optimizer steps (float64 to 1e-9, float32 to 1e-4), over padding, stride,
dilation and output_padding variants, with fused activations (relu in the kernels, others in
generated epilogues, one reading the pre-activation), without bias, frozen, and reading a
network input; what each group runs (hand-written kernels, no numpy rule); and a NaN in a
network input either layer reads refused in predict as on the reference."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nngraph
from nngraph.backends.cpu.calls import group_calls
from nngraph.backends.cpu.executor import SPLIT_MIN
from nngraph.errors import DataError
from nngraph.program import build_program
import test_backends
from test_backends import close, random_batch

DTYPES = [("float64", 1e-9), ("float32", 1e-4)]

TRANSPOSE = """
nngraph: 1
name: transposes
inputs: {x: {shape: [3, 4, 5]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d_transpose, name: t1, filters: 2, kernel: 3, activation: relu}
  - {op: conv2d_transpose, name: t2, in: x, filters: 3, kernel: [3, 4], stride: [2, 3],
     padding: [1, 2], output_padding: [1, 2], activation: tanh}
  - {op: conv2d_transpose, name: t3, in: t1, filters: 2, kernel: 2, stride: 3,
     padding: same, use_bias: false, activation: elu}
  - {op: conv2d_transpose, name: t4, in: t1, filters: 2, kernel: 3, padding: [3, 1],
     trainable: false, activation: {gaussian: {sigma: 0.7}}}
  - {op: conv2d, name: c1, in: t2, filters: 10, kernel: 3, stride: 2, activation: relu}
  - {op: conv2d_transpose, name: t5, in: c1, filters: 2, kernel: 2, stride: 2, padding: same,
     activation: relu}
  - {op: conv2d_transpose, name: t6, in: t2, filters: 2, kernel: [2, 3],
     stride: [3, 2], output_padding: [2, 1]}
  - {op: flatten, name: f3, in: t3}
  - {op: flatten, name: f4, in: t4}
  - {op: flatten, name: f5, in: t5}
  - {op: flatten, name: f6, in: t6}
  - {op: dense, name: h3, in: f3, units: 4}
  - {op: dense, name: h4, in: f4, units: 4}
  - {op: dense, name: h5, in: f5, units: 4}
  - {op: dense, name: h6, in: f6, units: 4}
  - {op: add, name: logits, in: [h3, h4, h5, h6]}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

CONV1D = """
nngraph: 1
name: convs1d
inputs: {s: {shape: [3, 17]}, t: {shape: [4]}}
layers:
  - {op: conv1d, name: a, filters: 4, kernel: 3, activation: relu}
  - {op: conv1d, name: b, filters: 3, kernel: 4, stride: 2, padding: same, activation: tanh}
  - {op: conv1d, name: c, in: s, filters: 2, kernel: 3, stride: 3, padding: 2, dilation: 2,
     use_bias: false}
  - {op: conv1d, name: d, in: a, filters: 10, kernel: 2, dilation: 3,
     activation: {gaussian: {sigma: 0.8}}}
  - {op: conv1d, name: e, in: d, filters: 2, kernel: 1, trainable: false, activation: elu}
  - {op: conv1d, name: g, in: a, filters: 3, kernel: 5, padding: same, activation: relu}
  - {op: flatten, name: fb, in: b}
  - {op: flatten, name: fc, in: c}
  - {op: flatten, name: fe, in: e}
  - {op: flatten, name: fg, in: g}
  - {op: dense, name: hb, in: fb, units: 4}
  - {op: dense, name: hc, in: fc, units: 4}
  - {op: dense, name: he, in: fe, units: 4}
  - {op: dense, name: hg, in: fg, units: 4, activation: sigmoid}
  - {op: add, name: out, in: [hb, hc, he, hg]}
outputs: [out]
losses:
  - {op: squared_error, in: [out, t]}
"""


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("name,spec", [("transposes", TRANSPOSE), ("convs1d", CONV1D)])
def test_the_lowerings_compute_what_the_reference_does(tmp_path, name, spec, dtype, rtol):
    path = tmp_path / f"{name}.yaml"
    path.write_text(spec)
    test_backends.test_cpu_matches_reference(str(path), dtype, rtol)
    cpu = nngraph.compile(str(path), backend="cpu", dtype=dtype, seed=3)
    ref = nngraph.compile(str(path), backend="reference", dtype=dtype, seed=3)
    batch = random_batch(cpu.net, 6, dtype, seed=7)
    got, want = cpu.evaluate(batch), ref.evaluate(batch)
    close(got["loss"], want["loss"], rtol)
    for n in (1, 2):                       # one sample, and a batch other than the last
        small = random_batch(cpu.net, n, dtype, seed=n)
        close(cpu.predict(small), ref.predict(small), rtol)


@pytest.mark.parametrize("spec", [TRANSPOSE, CONV1D], ids=["transposes", "convs1d"])
def test_two_halves_of_a_batch_compute_what_the_reference_does(monkeypatch, spec):
    monkeypatch.setenv("NNGRAPH_THREADS", "2")
    cpu = nngraph.compile(spec, backend="cpu", dtype="float64", seed=2)
    ref = nngraph.compile(spec, backend="reference", dtype="float64", seed=2)
    batch = random_batch(cpu.net, 2 * SPLIT_MIN + 3, "float64", seed=5)
    close(cpu.predict(batch), ref.predict(batch), 1e-9)
    g_c, g_r = cpu.gradients(batch), ref.gradients(batch)
    for k in g_r:
        close(g_c[k], g_r[k], 1e-8)


@pytest.mark.parametrize("spec,op,calls", [
    (TRANSPOSE, "conv2d_transpose", {"forward": "_conv.conv2d_transpose_forward",
                                     "backward": "_conv.conv2d_transpose_backward"}),
    (CONV1D, "conv1d", {"forward": "_conv.conv2d_forward",
                        "backward": "_conv.conv2d_backward"})])
def test_every_group_runs_hand_written_kernels(spec, op, calls):
    program = build_program(nngraph.load(spec))
    seen = set()
    for name, group in group_calls(program).items():
        anchor = program.graph.node(group.group.anchor)
        assert group.runs != "reference", (name, group.describe())
        if anchor.op.name == op:
            assert calls[group.group.kind] in group.callees, (name, group.describe())
            seen.add(group.group.kind)
    assert seen == {"forward", "backward"}


def test_conv1d_runs_on_views_of_its_arrays_and_the_conv2d_kernels_compile_once():
    """conv1d's arrays reach conv2d's kernels as (N, C, 1, L) views (no copy), typed as a
    conv2d's: in a network with both, each kernel has one compiled version per dtype."""
    spec = CONV1D.replace("name: convs1d", "name: convs1d_2d").replace(
        "inputs: {s: {shape: [3, 17]}, t: {shape: [4]}}",
        "inputs: {s: {shape: [3, 17]}, t: {shape: [4]}, im: {shape: [2, 5, 6]}}").replace(
        "  - {op: flatten, name: fb, in: b}",
        "  - {op: conv2d, name: k2, in: im, filters: 2, kernel: 3, activation: relu}\n"
        "  - {op: flatten, name: fk, in: k2}\n  - {op: dense, name: hk, in: fk, units: 4}\n"
        "  - {op: flatten, name: fb, in: b}").replace("[hb, hc, he, hg]", "[hb, hc, he, hg, hk]")
    model = nngraph.compile(spec, backend="cpu", dtype="float32", seed=1)
    train = " ".join(model.executor.gen.drivers["train"].split())     # calls wrap
    assert "_conv.conv2d_forward(v_s[:, :, None], p_a_W[:, :, None], p_a_b, " \
           "v_a_relu[:, :, None], " in train, train
    assert _float32_signatures(spec) == [1, 1]


def test_conv2d_transpose_calls_conv2d_s_kernels_as_a_conv2d_does():
    """The transpose kernels call conv2d_forward and conv2d_backward with the types a conv2d
    layer's driver gives them: with both ops in a network, each compiles once per dtype."""
    assert _float32_signatures(TRANSPOSE) == [1, 1]


def _float32_signatures(spec) -> list:
    """How many float32 versions conv2d_forward and conv2d_backward have after a model of
    `spec` computes gradients and predicts, in a process of its own (this one's other tests
    call the kernels with other array types)."""
    code = (
        "import json, sys, nngraph\n"
        "from nngraph.kernels.cpu import conv\n"
        "from test_backends import random_batch\n"
        "model = nngraph.compile(sys.stdin.read(), backend='cpu', dtype='float32', seed=1)\n"
        "model.gradients(random_batch(model.net, 3, 'float32'))\n"
        "model.predict(random_batch(model.net, 3, 'float32'))\n"
        "print(json.dumps([len([s for s in k.signatures if 'float32' in str(s[1])])\n"
        "                  for k in (conv.conv2d_forward, conv.conv2d_backward)]))\n")
    out = subprocess.run([sys.executable, "-c", code], input=spec, capture_output=True,
                         text=True, cwd=os.path.dirname(os.path.abspath(__file__)), timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("layer,checked", [
    ("{op: conv2d_transpose, name: t, filters: 2, kernel: 3, stride: 2, padding: 1}", True),
    # padding 3 >= kernel 3: the first input row reaches no output (the executor scans)
    ("{op: conv2d_transpose, name: t, filters: 2, kernel: 3, padding: [3, 0]}", False),
    ("{op: conv1d, name: t, filters: 2, kernel: 3, padding: same}", True),
    ("{op: conv1d, name: t, filters: 2, kernel: 3, stride: 2}", False)])
def test_a_nan_in_an_input_is_refused_in_predict(layer, checked):
    shape = "[3, 8, 9]" if "transpose" in layer else "[3, 9]"
    spec = f"""
nngraph: 1
name: nan_in
inputs: {{x: {{shape: {shape}}}}}
layers:
  - {layer}
outputs: [t]
"""
    model = nngraph.compile(spec, backend="cpu", dtype="float32")
    assert ("unfit += _conv." in model.executor.gen.drivers["predict"]) == checked
    x = random_batch(model.net, 3, "float32")["x"]
    want = model.predict(x)
    assert np.array_equal(model.predict(x), want)          # again, on the quick path
    x.reshape(3, -1)[2, 5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        model.predict(x)
