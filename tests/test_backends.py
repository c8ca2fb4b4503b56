"""Every spec runs on the fused CPU backend and computes what the reference backend computes:
the forward pass, the gradients and three optimizer steps (float64 to 1e-9, float32 to 1e-4)."""
import glob
import os

import numpy as np
import pytest

import nngraph
from nngraph.batch import _index_bounds
from nngraph.metrics import Tally

SPECS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "specs", "*.yaml")) +
               glob.glob(os.path.join(os.path.dirname(__file__), "..", "specs", "*.json")))


def random_batch(net, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    batch = {}
    for name, inp in net.inputs.items():
        if inp.dtype.startswith("int"):
            bounds = [b for b, _ in _index_bounds(net, name)] or [2]
            batch[name] = rng.integers(0, min(bounds), (n,) + inp.shape)
        else:
            batch[name] = rng.random((n,) + inp.shape).astype(dtype)
    return batch


def reported(model, data) -> dict:
    """What fit() reports for one training step on `data`: the loss, each loss of several
    by its name, and the metrics (read from the step's values before the next step)."""
    batch = model._batch(data, True, "train")
    loss, values = model._train_batch(batch)
    tally = Tally(model.program)
    tally.add(loss, values, batch, model.params)
    return tally.result()


def close(a, b, rtol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(b).max(), 1e-6)
    assert np.abs(a - b).max() <= rtol * scale, (np.abs(a - b).max(), scale)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
@pytest.mark.parametrize("path", SPECS, ids=lambda p: os.path.basename(p))
def test_cpu_matches_reference(path, dtype, rtol):
    cpu, _ = matches_reference(path, dtype, rtol)
    assert cpu.backend == "cpu"


def matches_reference(spec, dtype, rtol, n=5):
    """(cpu, reference) models of `spec` after checking that the CPU backend computes what
    the reference does: predictions, evaluate's report, gradients, three steps' reports (the
    loss, each loss of several, the metrics) and the parameters after them."""
    cpu = nngraph.compile(spec, backend="cpu", dtype=dtype, seed=1)
    ref = nngraph.compile(spec, backend="reference", dtype=dtype, seed=1)
    batch = random_batch(cpu.net, n, dtype)
    out_c, out_r = cpu.predict(batch), ref.predict(batch)
    if not isinstance(out_r, dict):
        out_c, out_r = {"y": out_c}, {"y": out_r}
    for k in out_r:
        close(out_c[k], out_r[k], rtol)
    if not cpu.net.losses:
        return cpu, ref
    ev_c, ev_r = cpu.evaluate(batch), ref.evaluate(batch)
    assert ev_c.keys() == ev_r.keys()
    for k in ev_r:
        close(ev_c[k], ev_r[k], rtol)
    g_c, g_r = cpu.gradients(batch), ref.gradients(batch)
    assert set(g_c) == set(g_r)
    for k in g_r:
        close(g_c[k], g_r[k], rtol * 10)
    for step in range(3):
        step_batch = random_batch(cpu.net, n, dtype, seed=step + 1)
        logs_c, logs_r = reported(cpu, step_batch), reported(ref, step_batch)
        assert logs_c.keys() == logs_r.keys()
        for k in logs_r:
            close(logs_c[k], logs_r[k], rtol)
    for k in ref.params:
        close(cpu.params[k], ref.params[k], rtol * 10)
    return cpu, ref


def test_flatten_is_a_view_of_its_input_or_a_copy(tmp_path):
    """A flatten of a layer's output runs nothing: its values and gradients are the
    layer's, reshaped, in the same memory. Two flattens of one output are two views of it;
    the second gradient that reaches the output is copied and added. A flatten of a reshape
    views the layer's output too. A flatten of a network input is a copy (the input is the
    caller's array). All match the reference."""
    views = tmp_path / "views.yaml"
    views.write_text("""
nngraph: 1
name: views
inputs: {x: {shape: [1, 6, 6]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, name: c1, filters: 2, kernel: 3, activation: relu}
  - {op: flatten, name: f1}
  - {op: flatten, name: f2, in: c1}
  - {op: add, name: both, in: [f1, f2]}
  - {op: dense, name: out, units: 3}
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
""")
    gen = nngraph.compile(str(views), backend="cpu", dtype="float64").executor.gen
    train = gen.drivers["train"]
    assert "# v_f1: a view of v_c1_relu (no copy)" in train
    assert "# v_f2: a view of v_c1_relu (no copy)" in train
    assert train.count("a view of g_c1_relu") == 1, train     # the first gradient
    assert "_add_into(g_c1_relu, " in train                   # the second, copied and added
    buffers = {b.name: b for b in gen.plans["train"][0]}
    assert buffers["v_f1"].offset == buffers["v_f2"].offset == buffers["v_c1_relu"].offset
    test_cpu_matches_reference(str(views), "float64", 1e-9)

    chain = tmp_path / "chain.yaml"          # a view of a view, both ways
    chain.write_text("""
nngraph: 1
name: chain
inputs: {x: {shape: [1, 6, 6]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, name: c1, filters: 2, kernel: 3, activation: relu}
  - {op: reshape, name: r1, shape: [4, 8]}
  - {op: flatten, name: f1}
  - {op: dense, name: out, units: 3}
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
""")
    gen = nngraph.compile(str(chain), backend="cpu", dtype="float64").executor.gen
    buffers = {b.name: b for b in gen.plans["train"][0]}
    assert buffers["g_f1"].alias_of == buffers["g_r1"].alias_of == "g_c1_relu"
    assert buffers["v_f1"].alias_of == buffers["v_r1"].alias_of == "v_c1_relu"
    test_cpu_matches_reference(str(chain), "float64", 1e-9)

    copy = tmp_path / "copy.yaml"
    copy.write_text("""
nngraph: 1
name: copy
inputs: {x: {shape: [2, 3]}, label: {shape: [], dtype: int64}}
layers:
  - {op: flatten, name: flat}
  - {op: dense, name: out, units: 3}
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
""")
    gen = nngraph.compile(str(copy), backend="cpu", dtype="float64").executor.gen
    assert "k_flat(v_x, v_flat, forward=True)" in gen.drivers["train"], gen.drivers["train"]
    test_cpu_matches_reference(str(copy), "float64", 1e-9)


def test_unrolled_maxpool_keeps_the_reference_rules_for_ties_and_nan():
    from nngraph.ops import REGISTRY, RunContext, make_attrs
    spec = """
nngraph: 1
name: pool
inputs: {x: {shape: [3, 6, 6]}}
layers:
  - {op: maxpool2d, name: p, size: 2}
"""
    model = nngraph.compile(spec, backend="cpu", dtype="float64")
    kernel = model.executor.module.k_p
    x = np.round(np.random.default_rng(0).random((4, 3, 6, 6)) * 3)     # many ties
    x[0, 0, 1, 1] = x[1, 2, 4, 5] = x[1, 2, 5, 4] = np.nan
    y, arg = np.zeros((4, 3, 3, 3)), np.zeros((4, 3, 3, 3), np.int64)
    kernel(x, y, arg)
    op = REGISTRY["maxpool2d"]
    ctx = RunContext()
    with np.errstate(invalid="ignore"):
        want = op.forward(ctx, make_attrs(op, size=2), [x], {})
    np.testing.assert_array_equal(y, want)
    value_only = np.zeros_like(y)                      # what evaluate and predict run
    model.executor.module.k_p_value(x, value_only)
    np.testing.assert_array_equal(value_only, want)
    g = np.random.default_rng(1).random(y.shape)
    (gx_want,), _ = op.backward(ctx, make_attrs(op, size=2), [x], {}, want, g)
    from nngraph.kernels.cpu import pool
    gx = np.zeros_like(x)
    pool.maxpool2d_backward(g, arg, gx)
    np.testing.assert_array_equal(gx, gx_want)


def test_fused_activation_that_needs_its_input(tmp_path):
    """gaussian's backward reads x, so the fused conv/dense keep the pre-activation."""
    path = tmp_path / "g.yaml"
    path.write_text("""
nngraph: 1
name: gauss
inputs: {x: {shape: [2, 6, 6]}, t: {shape: [5]}}
layers:
  - {op: conv2d, filters: 3, kernel: 3, activation: {gaussian: {sigma: 0.7}}}
  - {op: flatten}
  - {op: dense, name: out, units: 5, activation: gaussian}
losses:
  - {op: squared_error, in: [out, t]}
""")
    test_cpu_matches_reference(str(path), "float64", 1e-9)


def test_groups_with_the_same_code_share_one_kernel(tmp_path):
    """Two convs with the same activation call one epilogue kernel and one activation-
    backward kernel; the network still matches the reference."""
    path = tmp_path / "two.yaml"
    path.write_text("""
nngraph: 1
name: two_convs
inputs: {x: {shape: [1, 8, 8]}, t: {shape: [4]}}
layers:
  - {op: conv2d, filters: 2, kernel: 3, activation: elu}
  - {op: conv2d, filters: 3, kernel: 3, activation: elu}
  - {op: flatten}
  - {op: dense, name: out, units: 4}
losses:
  - {op: squared_error, in: [out, t]}
""")
    model = nngraph.compile(str(path), backend="cpu", dtype="float64")
    gen = model.executor.gen
    epilogues = [k for k in gen.kernels if k.startswith("k_elu_epilogue")]
    backward = [k for k in gen.kernels if k.startswith("k_d_elu")]
    assert epilogues == ["k_elu_epilogue"] and backward == ["k_d_elu"], list(gen.kernels)
    assert gen.drivers["train"].count("k_elu_epilogue(") == 2
    assert gen.drivers["train"].count("k_d_elu(") == 2
    test_cpu_matches_reference(str(path), "float64", 1e-9)


def test_layers_of_different_sizes_share_kernels(tmp_path):
    """Kernels read their extents from the arrays: two pooling layers (in training) and three
    dense layers of different sizes (two with relu, the logits without, relu switched by an
    argument) run one kernel each way, named after what they compute and listing the groups
    they serve in the docstring, and the network still matches the reference."""
    path = tmp_path / "shared.yaml"
    path.write_text("""
nngraph: 1
name: shared
inputs: {x: {shape: [1, 12, 12]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, name: c1, filters: 2, kernel: 3, activation: relu}
  - {op: maxpool2d, name: p1, size: 2}
  - {op: conv2d, name: c2, filters: 3, kernel: 2, activation: relu}
  - {op: maxpool2d, name: p2, size: 2}
  - {op: flatten, name: flat}
  - {op: dense, name: h1, units: 7, activation: relu}
  - {op: dense, name: h2, units: 5, activation: relu}
  - {op: dense, name: out, units: 3}
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
""")
    model = nngraph.compile(str(path), backend="cpu", dtype="float64")
    gen = model.executor.gen
    assert {"k_maxpool2d", "k_dense", "k_dense_backward"} <= set(gen.kernels), sorted(gen.kernels)
    # evaluate and predict pool in the convs' copy back (test_predict_pools_in_the_conv...)
    assert "k_maxpool2d_value" not in gen.kernels and gen.drivers["predict"].count("# and p") == 2
    dense = [line for line in gen.drivers["train"].splitlines() if "k_dense(" in line]
    assert [line.endswith(", relu=True)") for line in dense] == [True, True, False], dense
    assert "p1 (maxpool2d" in gen.kernels["k_maxpool2d"] and "p2 (maxpool2d" in gen.kernels["k_maxpool2d"]
    assert gen.drivers["train"].count("k_maxpool2d(") == 2
    rng = np.random.default_rng(0)
    model.train_step((rng.random((4, 1, 12, 12)), rng.integers(0, 3, 4)))
    assert "k_p1(" not in gen.drivers["train"] and "k_p1(" not in model.executor.source
    # evaluate runs training's loss kernel, into a scratch gradient, rather than its own
    losses = [k for k in gen.kernels if k.startswith("k_loss")]
    assert len(losses) == 1 and f"{losses[0]}(" in gen.drivers["evaluate"], losses
    test_cpu_matches_reference(str(path), "float64", 1e-9)


def test_predict_checks_inputs_in_the_first_dense_layer(tmp_path):
    """predict's first dense layers report NaN and infinity in their results instead of a
    scan of the input; a bad value anywhere (batch 1, mid-batch, in a later part of a
    split call) still gets the input's DataError about the whole array, and NaN that comes
    from a parameter instead is no input error. One input feeds a dense layer with bias and
    activation, the other one without either (a loop of its own, only for the check)."""
    from nngraph.errors import DataError
    path = tmp_path / "two_inputs.yaml"
    path.write_text("""
nngraph: 1
name: checked
inputs: {a: {shape: [6]}, b: {shape: [3]}}
layers:
  - {op: dense, name: ha, in: a, units: 4, activation: tanh}
  - {op: dense, name: hb, in: b, units: 4, use_bias: false}
  - {op: add, name: s, in: [ha, hb]}
  - {op: dense, name: out, units: 2}
outputs: [out]
""")
    model = nngraph.compile(str(path), backend="cpu", dtype="float32")
    assert model.executor.checks_finite["predict"] == {"a", "b"}
    predict = model.executor.gen.drivers["predict"]
    assert predict.count("unfit += ") == 2, predict
    rng = np.random.default_rng(0)
    data = {"a": rng.random((7, 6), np.float32), "b": rng.random((7, 3), np.float32)}
    ref = nngraph.compile(str(path), backend="reference", dtype="float32")
    ref.params = {k: np.array(v) for k, v in model.params.items()}
    close(model.predict(data, batch_size=3), ref.predict(data), 1e-5)
    for name, (i, j), bad, what in [("a", (0, 0), np.nan, "1 NaN"),
                                    ("b", (4, 2), np.inf, "1 infinite"),
                                    ("a", (6, 5), -np.inf, "1 infinite")]:
        for n in (1, 7):
            x = {k: v[:n].copy() for k, v in data.items()}
            x[name][min(i, n - 1), j] = bad
            first = min(i, n - 1)
            with pytest.raises(DataError, match=rf"input '{name}': expected finite float32 "
                               rf"values, got {what} \(the first in sample {first} of "
                               rf"\({n}, {x[name].shape[1]}\) float32\)"):
                model.predict(x, batch_size=3)
    model.params["ha.W"][0, 0] = np.nan          # not an input error: NaN comes out
    assert np.isnan(model.predict(data)).all()


@pytest.mark.parametrize("stride,checked", [(1, True), (2, False)])
def test_predict_checks_inputs_in_the_first_convolution(tmp_path, stride, checked):
    """A stride-1 convolution reads every input value, so it checks its input on the way,
    corners included (valid padding); with stride 2 some values reach no output and the
    input is scanned as before. Either way a NaN or infinity anywhere is a DataError."""
    from nngraph.errors import DataError
    path = tmp_path / "conv.yaml"
    path.write_text(f"""
nngraph: 1
name: conv_checked
inputs: {{image: {{shape: [2, 7, 7]}}}}
layers:
  - {{op: conv2d, name: c, filters: 3, kernel: 2, stride: {stride}, activation: relu}}
  - {{op: flatten}}
  - {{op: dense, name: out, units: 2}}
outputs: [out]
""")
    model = nngraph.compile(str(path), backend="cpu", dtype="float32")
    assert model.executor.checks_finite["predict"] == ({"image"} if checked else set())
    rng = np.random.default_rng(1)
    for n, at in [(1, (0, 1, 6, 6)), (70, (69, 0, 0, 0)), (70, (3, 1, 6, 0))]:
        x = rng.random((n, 2, 7, 7), np.float32)
        model.predict(x)
        x[at] = np.inf
        with pytest.raises(DataError, match=rf"got 1 infinite \(the first in sample {at[0]} "):
            model.predict(x)


@pytest.mark.parametrize("norm", [False, True])
def test_train_step_checks_inputs_in_the_first_layer(tmp_path, norm):
    """In training the first dense layer checks its input too: a NaN or infinity makes the
    driver's loss NaN, so there is no update, and the step raises the input's DataError
    with parameters, optimizer slots and step count as they were; gradients() too. A
    network with state (batchnorm's running statistics, which the NaN would reach) scans
    its input first instead, and its statistics stay as they were."""
    from nngraph.errors import DataError
    path = tmp_path / "train.yaml"
    path.write_text(f"""
nngraph: 1
name: train_checked
inputs: {{x: {{shape: [5]}}, y: {{shape: [], dtype: int64}}}}
layers:
  - {{op: dense, name: h, units: 4, activation: relu}}
{"  - {op: batchnorm, name: bn}" if norm else ""}
  - {{op: dense, name: out, units: 3}}
losses:
  - {{op: softmax_cross_entropy, in: [out, y]}}
train:
  optimizer: {{type: sgd, lr: 0.1, momentum: 0.9}}
""")
    model = nngraph.compile(str(path), backend="cpu", dtype="float32")
    assert model.executor.checks_finite["train"] == (set() if norm else {"x"})
    rng = np.random.default_rng(2)
    x, y = rng.random((6, 5), np.float32), rng.integers(0, 3, 6)
    model.train_step((x, y))
    kept = [{k: np.array(v) for k, v in d.items()} for d in
            (model.params, model.opt_state, *model.state.values())]
    step = model.step
    x[4, 2] = np.nan
    for call in (model.train_step, model.gradients):
        with pytest.raises(DataError, match=r"input 'x': expected finite float32 values, "
                                            r"got 1 NaN \(the first in sample 4 of"):
            call((x, y))
    now = [model.params, model.opt_state, *model.state.values()]
    assert model.step == step and all(np.array_equal(a[k], b[k]) for a, b in zip(kept, now)
                                      for k in a)


def _matches_reference_in_every_mode(path, model):
    """The spec at path runs as the reference does (forward, gradients, optimizer steps in
    float64 and float32), and float64 `model`'s evaluate too; returns the reference model."""
    test_cpu_matches_reference(str(path), "float64", 1e-9)
    test_cpu_matches_reference(str(path), "float32", 1e-4)
    ref = nngraph.compile(str(path), backend="reference", dtype="float64")
    batch = random_batch(model.net, 7, "float64", seed=4)
    got, want = model.evaluate(batch), ref.evaluate(batch)
    assert got["accuracy"] == want["accuracy"]
    close(got["loss"], want["loss"], 1e-9)
    return ref


def test_evaluate_and_predict_run_padded_convolutions_on_whole_rows(tmp_path):
    """evaluate and predict run conv2d_forward_wide for a padded conv of stride 1 (here the
    first layer, which also checks the input, and one that pools in its copy back);
    conv2d_forward for a 1x1 and an unpadded 3x3 conv, a strided and a dilated one, and
    for everything in training. Results as the reference's."""
    from nngraph.errors import DataError
    path = tmp_path / "wide.yaml"
    path.write_text("""
nngraph: 1
name: wide
inputs: {image: {shape: [2, 9, 10]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, name: a, filters: 3, kernel: 3, padding: same, activation: relu}
  - {op: conv2d, name: b, filters: 4, kernel: [3, 2], padding: same}
  - {op: conv2d, name: c, filters: 3, kernel: 1, activation: tanh}
  - {op: conv2d, name: d, filters: 3, kernel: 3}
  - {op: conv2d, name: e, in: c, filters: 2, kernel: 3, stride: 2, padding: 1}
  - {op: conv2d, name: f, in: c, filters: 2, kernel: 3, dilation: 2, padding: 2}
  - {op: conv2d, name: g, in: a, filters: 2, kernel: [2, 3], padding: 1, activation: relu}
  - {op: maxpool2d, name: pg, size: 2}
  - {op: flatten, name: fd, in: d}
  - {op: flatten, name: fe, in: e}
  - {op: flatten, name: ff, in: f}
  - {op: flatten, name: fg, in: pg}
  - {op: concat, name: cat, in: [fd, fe, ff, fg]}
  - {op: dense, name: out, units: 3}
outputs: [out]
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
""")
    model = nngraph.compile(str(path), backend="cpu", dtype="float64")
    drivers = model.executor.gen.drivers

    def calls(mode, kernel):                # the inputs of the convs that kernel runs
        return sorted(line.split("(")[1].split(",")[0] for line in drivers[mode].splitlines()
                      if f".{kernel}(" in line)
    for mode in ("evaluate", "predict"):
        assert calls(mode, "conv2d_forward_wide") == ["v_a_relu", "v_a_relu", "v_image"], \
            drivers[mode]                                           # b, g; a
        assert calls(mode, "conv2d_forward") == ["v_b"] + ["v_c_tanh"] * 3   # c; d, e, f
        assert "# and pg (maxpool2d 2x2)" in drivers[mode]
    assert "conv2d_forward_wide" not in drivers["train"]
    from nngraph.cli_tools import describe
    from nngraph.backends.cpu.calls import codegen, group_calls
    gen = codegen(model.program, "float64")
    index = describe(model.net, gen, group_calls(model.program, gen=gen))
    assert [line.split(": ")[1].split(" ")[0] for line in index.splitlines()
            if "unfolds its input in whole padded rows" in line] == ["a_relu", "b", "g_relu"]
    ref = _matches_reference_in_every_mode(path, model)
    x = np.random.default_rng(2).random((5, 2, 9, 10))
    close(model.predict(x), ref.predict(x), 1e-9)
    x[3, 1, 8, 9] = np.inf                          # the last value of a sample
    with pytest.raises(DataError, match=r"sample 3"):
        model.predict(x)


def test_predict_pools_in_the_conv_copy_back(tmp_path):
    """evaluate and predict pool a conv's output in the conv kernel's copy back when a 2x2
    pooling at stride 2 alone reads it (relu or no activation, even output); training keeps
    the pooling kernel, whose arg-max the backward reads. Results as the reference's, and
    the input still checked on the way."""
    from nngraph.errors import DataError
    path = tmp_path / "pooled.yaml"
    path.write_text("""
nngraph: 1
name: pooled
inputs: {image: {shape: [2, 9, 9]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, name: a, filters: 3, kernel: 2, activation: relu}
  - {op: maxpool2d, name: pa, size: 2}
  - {op: conv2d, name: b, filters: 2, kernel: 1, activation: tanh}
  - {op: maxpool2d, name: pb, size: 2}
  - {op: conv2d, name: c, in: pa, filters: 2, kernel: 1}
  - {op: maxpool2d, name: pc, size: 2}
  - {op: conv2d, name: d, in: pa, filters: 2, kernel: 2, activation: relu}
  - {op: maxpool2d, name: pd, size: 2}
  - {op: flatten, name: fb, in: pb}
  - {op: flatten, name: fc, in: pc}
  - {op: flatten, name: fd, in: pd}
  - {op: concat, name: cat, in: [fb, fc, fd]}
  - {op: dense, name: out, units: 3}
outputs: [out]
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
""")
    model = nngraph.compile(str(path), backend="cpu", dtype="float64")
    drivers = model.executor.gen.drivers
    # a: relu, c: no activation, pooled; b: tanh, d: an odd output (3x3), apart
    for mode in ("evaluate", "predict"):
        pooled = [line for line in drivers[mode].splitlines() if "# and" in line]
        assert [line.split("# and ")[1] for line in pooled] == \
            ["pa (maxpool2d 2x2)", "pc (maxpool2d 2x2)"], drivers[mode]
        assert "_value(v_b_tanh, v_pb)" in drivers[mode] and "(v_d_relu, v_pd)" in drivers[mode]
    assert "# and" not in drivers["train"]
    from nngraph.cli_tools import describe
    from nngraph.backends.cpu.calls import codegen, group_calls
    gen = codegen(model.program, "float64")
    index = describe(model.net, gen, group_calls(model.program, gen=gen))
    assert "evaluate and predict: a_relu also pools pa in its copy back" in index, index
    assert "evaluate and predict: c also pools pc" in index and " b_tanh also" not in index
    _matches_reference_in_every_mode(path, model)
    model32 = nngraph.compile(str(path), backend="cpu", dtype="float32")
    x = np.random.default_rng(2).random((5, 2, 9, 9), np.float32)
    model32.predict(x)
    x[4, 1, 8, 8] = np.nan
    with pytest.raises(DataError, match=r"got 1 NaN \(the first in sample 4 "):
        model32.predict(x)


def test_penalty_gradient_of_a_layer_no_loss_reaches_does_not_pile_up():
    """An unused regularized layer still pays its penalty; its gradient is the penalty's
    alone at every step (the train driver never writes it), as on the reference backend."""
    spec = """
nngraph: 1
name: unused
inputs: {x: {shape: [4]}, y: {shape: [], dtype: int64}}
layers:
  - {op: dense, name: used, units: 3}
  - {op: dense, name: spare, in: x, units: 2, regularizer: {l2: 0.5}}
outputs: [used]
losses:
  - {op: softmax_cross_entropy, in: [used, y]}
train: {optimizer: {type: sgd, lr: 0.1}}
"""
    rng = np.random.default_rng(0)
    batch = {"x": rng.standard_normal((5, 4)), "y": rng.integers(0, 3, 5)}
    models = {k: nngraph.compile(spec, backend=k, seed=1, dtype="float64")
              for k in ("cpu", "reference")}
    for _ in range(3):
        for m in models.values():
            m.train_step(batch)
    for k in models["reference"].params:
        np.testing.assert_allclose(models["cpu"].params[k], models["reference"].params[k],
                                   rtol=1e-12, atol=1e-14)
    grads = {k: m.gradients(batch) for k, m in models.items()}
    np.testing.assert_allclose(grads["cpu"]["spare.W"], grads["reference"]["spare.W"],
                               rtol=1e-12)


@pytest.mark.parametrize("loss", ["mse", "mean_absolute_error"])
def test_mse_and_mae_train_on_the_cpu_backend_as_on_the_reference(loss):
    spec = f"""
nngraph: 1
name: regress_{loss}
inputs: {{x: {{shape: [3]}}, y: {{shape: [2]}}}}
layers:
  - {{op: dense, units: 4, activation: tanh}}
  - {{op: dense, name: out, units: 2}}
outputs: [out]
losses:
  - {{op: {loss}, in: [out, y]}}
train: {{optimizer: {{type: sgd, lr: 0.1}}}}
"""
    rng = np.random.default_rng(1)
    batch = {"x": rng.standard_normal((6, 3)), "y": rng.standard_normal((6, 2))}
    models = {k: nngraph.compile(spec, backend=k, seed=2, dtype="float64")
              for k in ("cpu", "reference")}
    losses = {k: [m.train_step(batch) for _ in range(3)] for k, m in models.items()}
    np.testing.assert_allclose(losses["cpu"], losses["reference"], rtol=1e-12)
    for k in models["reference"].params:
        np.testing.assert_allclose(models["cpu"].params[k], models["reference"].params[k],
                                   rtol=1e-12)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_every_backend_is_an_executor_with_its_hooks(backend):
    """A Model calls the runs and hooks of backends/base.Executor, never asking whether an
    executor has them: the reference backend takes the defaults, the cpu backend its own."""
    from nngraph.backends.base import Executor
    model = nngraph.compile(os.path.join(os.path.dirname(__file__), "..", "specs",
                                         "xor_mlp.yaml"), backend=backend)
    ex = model.executor
    assert isinstance(ex, Executor)
    if backend == "reference":
        assert ex.fused_groups == 0 and ex.prepared("train")
        assert ex.quick_predict({}, None, 1) is None
    else:
        assert ex.fused_groups > 0 and type(ex).adopt is not Executor.adopt
    from nngraph.data import load_training_data
    assert "loss" in model.evaluate(load_training_data(model.net)[0])
