"""The CPU lowerings of the losses (nngraph/backends/cpu/lower/): mean_squared_error (mse),
mean_absolute_error (mae), sigmoid_cross_entropy, hinge, logistic, exponential, max_margin
and kl_sparsity compute what their numpy rules compute, in one generated kernel each:
the loss, every gradient, what training reports, evaluate and three optimizer steps, in
float64 (1e-9) and float32 (1e-4), for mean and sum, weights other than 1 and two losses on
one prediction (the second gradient added to the first)."""
import os

import numpy as np
import pytest

import nngraph
from nngraph.backends.cpu.calls import group_calls

from test_backends import close, reported

SPECS = os.path.join(os.path.dirname(__file__), "..", "specs")
DTYPES = [("float64", 1e-9), ("float32", 1e-4)]

# Two losses of one kind on one prediction, with other weights, reductions and constants;
# the second reads labels as integers where the op allows them.
HEAD = """
nngraph: 1
name: {name}
inputs: {{x: {{shape: [5]}}, y: {{shape: {shape}{ydtype}}}, yi: {{shape: {shape}, dtype: int64}}}}
layers:
  - {{op: dense, name: h, in: x, units: 6, activation: tanh}}
  - {{op: dense, name: out, units: {units}}}
outputs: [out]
losses:
  - {{op: {a}, name: a, in: [out, y], weight: 0.7{extra_a}}}
  - {{op: {b}, name: b, in: [out, yi], weight: 1.5, reduction: sum{extra_b}}}
train: {{optimizer: {{type: sgd, lr: 0.1}}}}
"""

SPARSE = """
nngraph: 1
name: sparse
inputs: {x: {shape: [5]}}
layers:
  - {op: dense, name: code, in: x, units: 6, activation: sigmoid}
  - {op: dense, name: lin, in: x, units: 4}
  - {op: reshape, name: grid, in: code, shape: [2, 3]}
  - {op: dense, name: decoded, in: code, units: 5}
outputs: [decoded]
losses:
  - {op: mse, in: [decoded, x]}
  - {op: kl_sparsity, name: k1, in: code, rho: 0.05, beta: 3.0, weight: 0.1}
  - {op: kl_sparsity, name: k2, in: grid, rho: 0.3, beta: 0.5, weight: 2.0, reduction: sum}
  - {op: kl_sparsity, name: k3, in: lin, rho: 0.2, beta: 1.5, weight: 0.4}
train: {optimizer: {type: sgd, lr: 0.1}}
"""


def labels(kind, rng, n, shape, classes=3):
    """(float labels, integer labels) of one kind."""
    if kind == "values":
        y = rng.standard_normal((n,) + shape)
        return y, rng.integers(-2, 3, (n,) + shape)
    if kind == "probabilities":
        return rng.random((n,) + shape), rng.integers(0, 2, (n,) + shape)
    if kind == "signs":
        return rng.choice([-1.0, 1.0], (n,) + shape), rng.choice([-1, 1], (n,) + shape)
    c = rng.integers(0, classes, (n,) + shape)
    return c, c


def batch(kind, dtype, seed, n=7, shape=(3,), scale=1.0, classes=3):
    rng = np.random.default_rng(seed)
    y, yi = labels(kind, rng, n, shape, classes)
    y = y.astype(dtype) if kind != "classes" else y
    return {"x": (scale * rng.standard_normal((n, 5))).astype(dtype), "y": y, "yi": yi}


def runs_generated(model, groups):
    calls = group_calls(model.program, model.dtype)
    for name in groups:
        assert calls[name].runs == "generated", (name, calls[name].describe())
    return calls


def compare(spec, batches, dtype, rtol, prepare=None):
    """CPU and reference backends on `spec`: gradients and evaluate on each batch, then what
    training reports over three steps, then the parameters."""
    models = {k: nngraph.compile(spec, backend=k, dtype=dtype, seed=1)
              for k in ("cpu", "reference")}
    cpu, ref = models["cpu"], models["reference"]
    assert cpu.backend == "cpu"
    if prepare:
        for m in models.values():
            prepare(m.params)
    for data in batches:
        g_c, g_r = cpu.gradients(data), ref.gradients(data)
        assert set(g_c) == set(g_r)
        for k in g_r:
            close(g_c[k], g_r[k], rtol * 10)
        e_c, e_r = cpu.evaluate(data), ref.evaluate(data)
        assert e_c.keys() == e_r.keys()
        for k in e_r:
            close(e_c[k], e_r[k], rtol)
    for data in batches[:1] * 3:
        logs_c, logs_r = reported(cpu, data), reported(ref, data)
        assert logs_c.keys() == logs_r.keys()
        for k in logs_r:
            close(logs_c[k], logs_r[k], rtol)
    for k in ref.params:
        close(cpu.params[k], ref.params[k], rtol * 10)
    return cpu


CASES = {
    # kind of labels, op a, op b, extra attributes of a and of b
    "mse": ("values", "mse", "mean_squared_error", "", ""),
    "mae": ("values", "mean_absolute_error", "mae", "", ""),
    "sigmoid_cross_entropy": ("probabilities", "sigmoid_cross_entropy",
                              "sigmoid_cross_entropy", "", ""),
    "hinge": ("signs", "hinge", "hinge", "", ", margin: 0.5"),
    "logistic": ("signs", "logistic", "logistic", "", ""),
    "exponential": ("signs", "exponential", "exponential", "", ""),
    "max_margin": ("classes", "max_margin", "max_margin", ", margin: 2.0", ""),
}


def case_spec(name):
    kind, a, b, extra_a, extra_b = CASES[name]
    classes = kind == "classes"
    return kind, HEAD.format(name=f"two_{name}", shape="[]" if classes else "[3]",
                             ydtype=", dtype: int64" if classes else "",
                             units=4 if classes else 3, a=a, b=b, extra_a=extra_a,
                             extra_b=extra_b)


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_loss_matches_reference(name, dtype, rtol):
    kind, spec = case_spec(name)
    shape, classes = ((), 4) if kind == "classes" else ((3,), 3)
    batches = [batch(kind, dtype, seed, shape=shape, classes=classes) for seed in (1, 2)]
    cpu = compare(spec, batches, dtype, rtol)
    calls = runs_generated(cpu, ["loss_a", "loss_b"])
    # two losses of a kind share one compiled kernel, whatever their settings
    assert calls["loss_a"].kernels == calls["loss_b"].kernels


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid_cross_entropy", "logistic"])
def test_stable_forms_for_logits_in_the_hundreds(name, dtype, rtol):
    """Where exp(|x|) overflows, as the numpy rules compute them."""
    kind, spec = case_spec(name)

    def large(params):
        params["out.W"][...] *= 400.0
        params["out.b"][...] *= 400.0
    compare(spec, [batch(kind, dtype, seed) for seed in (1, 2)], dtype, rtol, prepare=large)


def test_mae_gradient_is_zero_where_the_prediction_equals_its_target():
    """sign(0) = 0, as numpy's: a zero network's predictions equal half of the targets."""
    kind, spec = case_spec("mae")

    def zero_output(params):
        params["out.W"][...] = 0.0
        params["out.b"][...] = 0.0
    data = batch(kind, "float64", 1)
    data["y"][:, 0] = 0.0
    data["yi"][:, 1] = 0
    compare(spec, [data], "float64", 1e-9, prepare=zero_output)


def test_max_margin_gives_the_gradient_to_the_first_of_tied_rivals():
    """All scores equal (a zero output layer): every rival ties, and numpy's argmax picks
    the first; the margin is violated everywhere."""
    kind, spec = case_spec("max_margin")

    def zero_output(params):
        params["out.W"][...] = 0.0
        params["out.b"][...] = 0.0
    for dtype, rtol in DTYPES:
        compare(spec, [batch(kind, dtype, 1, shape=(), classes=4)], dtype, rtol,
                prepare=zero_output)


@pytest.mark.parametrize("dtype,rtol", DTYPES)
def test_kl_sparsity_matches_reference(dtype, rtol):
    """On a sigmoid code and on a reshape of it (units of any shape), the gradient reaching
    every sample and adding to the decoder's; and on a linear layer whose units' means are
    pushed out of (0, 1), where the mean is clipped and the unit gets no gradient."""
    def clip_some(params):
        params["lin.W"][...] *= 0.01
        params["lin.b"][...] = [-1.0, 0.5, 2.0, 0.3]     # below 0, inside, above 1, inside

    batches = [{"x": batch("values", dtype, seed)["x"]} for seed in (1, 2)]
    cpu = compare(SPARSE, batches, dtype, rtol, prepare=clip_some)
    calls = runs_generated(cpu, ["loss_k1", "loss_k2", "loss_k3"])
    assert calls["loss_k1"].kernels == calls["loss_k2"].kernels == calls["loss_k3"].kernels


def test_a_loss_on_a_network_input_runs_without_a_gradient():
    """A loss whose prediction is a network input has no gradient to write: its kernel
    computes the loss alone. (The reference leaves such a loss out of training's total, so
    only gradients and evaluate are compared.)"""
    spec = """
nngraph: 1
name: on_input
inputs: {x: {shape: [5]}, y: {shape: [3]}, s: {shape: [3]}, h: {shape: [4]}}
layers:
  - {op: dense, name: out, in: x, units: 3}
outputs: [out]
losses:
  - {op: mse, in: [out, y]}
  - {op: hinge, name: on_s, in: [s, y], weight: 0.5, margin: 0.3}
  - {op: kl_sparsity, name: on_h, in: h, rho: 0.1, weight: 0.2}
train: {optimizer: {type: sgd, lr: 0.1}}
"""
    rng = np.random.default_rng(0)
    data = {"x": rng.standard_normal((6, 5)), "y": rng.choice([-1.0, 1.0], (6, 3)),
            "s": rng.standard_normal((6, 3)), "h": rng.random((6, 4))}
    models = {k: nngraph.compile(spec, backend=k, dtype="float64", seed=1)
              for k in ("cpu", "reference")}
    runs_generated(models["cpu"], ["loss_on_s", "loss_on_h"])
    g = {k: m.gradients(data) for k, m in models.items()}
    for k in g["reference"]:
        close(g["cpu"][k], g["reference"][k], 1e-8)
    e = {k: m.evaluate(data) for k, m in models.items()}
    for k in e["reference"]:
        close(e["cpu"][k], e["reference"][k], 1e-9)


@pytest.mark.parametrize("spec", ["sparse_autoencoder", "autoencoder",
                                  "denoising_autoencoder", "stacked_autoencoder"])
def test_autoencoder_losses_run_generated(spec):
    program = nngraph.compile(os.path.join(SPECS, f"{spec}.yaml"), backend="reference").program
    calls = group_calls(program)
    for name, c in calls.items():
        if c.group.kind == "loss":
            assert c.runs == "generated", (name, c.describe())
