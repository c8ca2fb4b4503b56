"""The contractive penalty ||d code / d input||_F^2: its value and every gradient (the encoder's
weights and biases, and the input) equal PyTorch's double backward in float64; the CPU
backend computes what the reference does; on the digits it makes the code's Jacobian smaller;
encoders it cannot differentiate twice are located errors naming the layer."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

import nngraph
from nngraph.data import load_training_data
from nngraph.ops import REGISTRY, RunContext, make_attrs
from nngraph.ops._second_derivatives import VALUE_AND_DERIVATIVES
from test_backends import matches_reference

OP = REGISTRY["contractive"]
TOL = 1e-9

TORCH_ACTIVATIONS = {
    "sigmoid": lambda a, at: torch.sigmoid(a),
    "tanh": lambda a, at: torch.tanh(a),
    "relu": lambda a, at: torch.relu(a),
    "softplus": lambda a, at: F.softplus(a),
    "leaky_relu": lambda a, at: F.leaky_relu(a, at["alpha"]),
    "elu": lambda a, at: F.elu(a, at["alpha"]),
    "selu": lambda a, at: at["gamma"] * torch.where(
        a > 0, a, at["alpha"] * torch.expm1(torch.clamp(a, max=0))),
    "softsign": lambda a, at: F.softsign(a),
    "gaussian": lambda a, at: torch.exp(-a * a / at["sigma"] ** 2),
    "ramp": lambda a, at: torch.clamp(a, -1, 1),
    "identity": lambda a, at: a,
}


# ------------------------------------------------------------------ PyTorch's double backward

def torch_penalty(chain, p, x, reduction="mean"):
    """(penalty, {param: gradient}, input gradient) by autograd through the Jacobian."""
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x.reshape(len(x), -1), requires_grad=True)

    def encoder(v):
        for step in chain:
            if step[0] == "dense":
                v = v @ tp[step[1]] + (tp[step[2]] if step[2] else 0)
            else:
                v = TORCH_ACTIVATIONS[step[1]](v, dict(step[2]))
        return v

    per_sample = torch.stack([jacobian(encoder, tx[i], create_graph=True).pow(2).sum()
                              for i in range(len(tx))])
    loss = per_sample.mean() if reduction == "mean" else per_sample.sum()
    grads = torch.autograd.grad(loss, list(tp.values()) + [tx], allow_unused=True,
                                materialize_grads=True)
    gp = {k: g.numpy() for k, g in zip(tp, grads)}
    return loss.item(), gp, grads[-1].numpy().reshape(x.shape)


def ours(chain, p, x, reduction="mean", gy=1.0):
    a = make_attrs(OP, reduction=reduction)
    a["_chain"] = chain
    code = np.zeros((len(x), 1))                  # only names the code; never read
    ctx = RunContext()
    y = OP.forward(ctx, a, [code, x], p)
    (g_code, gx), gp = OP.backward(ctx, a, [code, x], p, y, gy)
    assert g_code is None
    return float(y), gp, gx


def assert_close(got, want, what):
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(np.asarray(got) - want).max() <= TOL * scale, what


def assert_matches_torch(chain, p, x, reduction="mean"):
    loss, gp, gx = ours(chain, p, x, reduction)
    t_loss, t_gp, t_gx = torch_penalty(chain, p, x, reduction)
    assert_close(loss, t_loss, "penalty")
    assert gp.keys() == t_gp.keys()
    for k in t_gp:
        assert_close(gp[k], t_gp[k], k)
    assert_close(gx, t_gx, "input")
    return loss


def dense(k, fan_in, units, bias=True):
    return ("dense", f"W{k}", f"b{k}" if bias else None, fan_in, units)


def act(name, units, **attrs):
    op = REGISTRY[name]
    at = {**{x.name: x.default for x in op.attrs}, **attrs}
    return ("act", name, tuple(sorted(at.items())), units)


def params_for(chain, seed=0):
    rng = np.random.default_rng(seed)
    p = {}
    for s in chain:
        if s[0] == "dense":
            p[s[1]] = rng.normal(0, 0.7, (s[3], s[4]))
            if s[2]:
                p[s[2]] = rng.normal(0, 0.5, s[4])
    return p


def inputs(n, shape, seed=1):
    return np.random.default_rng(seed).normal(size=(n,) + shape)


# ------------------------------------------------------------------ the rule against PyTorch

@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_one_sigmoid_layer_is_the_classic_closed_form(reduction):
    chain = (dense(0, 6, 4), act("sigmoid", 4))
    p, x = params_for(chain), inputs(5, (6,))
    loss = assert_matches_torch(chain, p, x, reduction)
    h = 1 / (1 + np.exp(-(x @ p["W0"] + p["b0"])))
    per_sample = ((h * (1 - h)) ** 2 * (p["W0"] ** 2).sum(axis=0)).sum(axis=1)
    assert loss == pytest.approx(per_sample.mean() if reduction == "mean" else per_sample.sum(),
                                 rel=1e-12)


def test_two_layers_tanh_then_sigmoid():
    chain = (dense(0, 7, 5), act("tanh", 5), dense(1, 5, 3), act("sigmoid", 3))
    assert_matches_torch(chain, params_for(chain), inputs(4, (7,)))


def test_relu_encoder():
    chain = (dense(0, 6, 8), act("relu", 8), dense(1, 8, 3, bias=False), act("relu", 3))
    p, x = params_for(chain, seed=3), inputs(6, (6,))
    assert_matches_torch(chain, p, x)
    # relu's f'' is 0: b0 and the input reach the penalty only through which units are on,
    # so their gradients vanish, as PyTorch says
    _, gp, gx = ours(chain, p, x)
    assert np.abs(gp["b0"]).max() == 0 and np.abs(gx).max() == 0


@pytest.mark.parametrize("name", sorted(VALUE_AND_DERIVATIVES))
def test_every_supported_activation(name):
    extra = {"alpha": 0.3} if name in ("elu", "leaky_relu") else {}
    chain = (dense(0, 5, 4), act(name, 4, **extra), dense(1, 4, 3), act(name, 3, **extra))
    assert_matches_torch(chain, params_for(chain, seed=2), inputs(4, (5,), seed=4))


def test_activation_before_the_first_dense_layer_and_no_activation_after():
    """The Jacobian starts diagonal (tanh of the input itself) and ends on a linear code."""
    chain = (act("tanh", 6), dense(0, 6, 4), act("softplus", 4), dense(1, 4, 3))
    assert_matches_torch(chain, params_for(chain), inputs(3, (6,)))


def test_value_of_a_linear_encoder_is_its_weights_norm():
    chain = (dense(0, 4, 3),)
    p, x = params_for(chain), inputs(5, (4,))
    loss, gp, gx = ours(chain, p, x, "sum")
    assert loss == pytest.approx(5 * (p["W0"] ** 2).sum(), rel=1e-12)
    np.testing.assert_allclose(gp["W0"], 10 * p["W0"], rtol=1e-12)
    assert np.abs(gp["b0"]).max() == 0 and np.abs(gx).max() == 0


def test_float32_stays_float32():
    chain = (dense(0, 6, 4), act("sigmoid", 4))
    p = {k: v.astype(np.float32) for k, v in params_for(chain).items()}
    x = inputs(5, (6,)).astype(np.float32)
    a = make_attrs(OP)
    a["_chain"] = chain
    ctx = RunContext()
    y = OP.forward(ctx, a, [None, x], p)
    (_, gx), gp = OP.backward(ctx, a, [None, x], p, y, np.float32(1))
    assert gx.dtype == np.float32 and all(g.dtype == np.float32 for g in gp.values())


# ------------------------------------------------------------------ through a spec

def spec(encoder, input_shape=(6,), losses=None, extra_inputs=""):
    return f"""
nngraph: 1
name: cae
inputs: {{image: {{shape: {list(input_shape)}}}{extra_inputs}}}
layers:
{encoder}
  - {{op: dense, name: decoded, units: {math.prod(input_shape)}, activation: sigmoid}}
outputs: [decoded]
losses:
{losses or "  - {op: contractive, name: cae, in: [code, image]}"}
train: {{optimizer: {{type: sgd, lr: 0.1}}}}
"""


ENCODERS = {
    "one sigmoid layer": "  - {op: dense, name: code, units: 4, activation: sigmoid}",
    "tanh then sigmoid": "  - {op: dense, name: h, units: 5, activation: tanh}\n"
                         "  - {op: dense, name: code, units: 3, activation: sigmoid}",
    "relu layers": "  - {op: dense, name: h, units: 8, activation: relu}\n"
                   "  - {op: dense, name: code, units: 3}\n"
                   "  - {op: relu, name: code_relu}",
}


def compiled_against_torch(text, shape=(6,)):
    model = nngraph.compile(text, backend="reference", dtype="float64", seed=0)
    node = model.net.node("cae")
    borrowed, chain = node["borrowed"], node["attrs"]["_chain"]
    p = {local: model.params[key] for local, key in borrowed.items()}
    x = inputs(5, shape, seed=7)
    loss, t_gp, _ = torch_penalty(chain, p, x)
    assert_close(model.evaluate({"image": x})["loss"], loss, "penalty")
    grads = model.gradients({"image": x})
    want = {}                          # a parameter two layers share gets both gradients
    for local, key in borrowed.items():
        want[key] = want.get(key, 0) + t_gp[local]
    for key in want:
        assert_close(grads[key], want[key], key)
    return model, grads


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_compiled_penalty_and_gradients_equal_torch(name):
    code = "code_relu" if name == "relu layers" else "code"
    compiled_against_torch(spec(ENCODERS[name], losses=(
        f"  - {{op: contractive, name: cae, in: [{code}, image]}}")))


def test_borrowed_names_count_dense_layers_from_the_input():
    net = nngraph.load(spec(ENCODERS["tanh then sigmoid"]))
    node = net.node("cae")
    assert node["borrowed"] == {"W0": "h.W", "b0": "h.b", "W1": "code.W", "b1": "code.b"}
    assert [s[:2] for s in node["attrs"]["_chain"]] == [
        ("dense", "W0"), ("act", "tanh"), ("dense", "W1"), ("act", "sigmoid")]


def test_flatten_and_activation_layers_pass_through():
    text = ("  - {op: flatten, name: flat}\n"
            "  - {op: dense, name: h, units: 4, use_bias: false}\n"
            "  - {op: elu, name: h_elu, alpha: 0.5}\n"
            "  - {op: dense, name: code, units: 3, activation: softplus}")
    model, _ = compiled_against_torch(spec(text, input_shape=(2, 3)), shape=(2, 3))
    assert "b0" not in model.net.node("cae")["borrowed"]
    assert ("act", "elu", (("alpha", 0.5),), 4) in model.net.node("cae")["attrs"]["_chain"]


def test_a_layer_sharing_another_ones_parameters():
    """Tied encoder layers (shares:): the penalty reads the one W twice, as PyTorch does."""
    text = ("  - {op: dense, name: h, units: 6, activation: tanh}\n"
            "  - {op: dense, name: code, units: 6, activation: sigmoid, shares: h}")
    model, _ = compiled_against_torch(spec(text))
    assert model.net.node("cae")["borrowed"] == {"W0": "h.W", "b0": "h.b", "W1": "h.W",
                                                 "b1": "h.b"}


def test_an_input_computed_by_a_layer_gets_its_gradient():
    """in: [code, pre] where pre is a layer: the penalty depends on pre's weights through the
    encoder's pre-activations, and that gradient reaches pre.W (checked against PyTorch)."""
    text = ("  - {op: dense, name: pre, units: 5}\n"
            "  - {op: dense, name: code, units: 3, activation: tanh}")
    losses = "  - {op: contractive, name: cae, in: [code, pre]}"
    model = nngraph.compile(spec(text, losses=losses), backend="reference", dtype="float64",
                            seed=0)
    x = inputs(4, (6,), seed=5)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    tx = torch.tensor(x)

    def encoder(v):
        return torch.tanh(v @ p["code.W"] + p["code.b"])

    pre = tx @ p["pre.W"] + p["pre.b"]
    loss = torch.stack([jacobian(encoder, pre[i], create_graph=True).pow(2).sum()
                        for i in range(len(x))]).mean()
    loss.backward()
    grads = model.gradients({"image": x})
    for key in ("pre.W", "pre.b", "code.W", "code.b"):
        assert_close(grads[key], p[key].grad.numpy(), key)
    assert np.abs(grads["pre.W"]).max() > 1e-3


CPU_SPEC = spec(ENCODERS["tanh then sigmoid"], losses=(
    "  - {op: squared_error, name: rec, in: [decoded, image]}\n"
    "  - {op: contractive, name: cae, in: [code, image], weight: 0.3}"))


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_cpu_backend_matches_reference_over_three_steps(dtype, rtol):
    cpu, ref = matches_reference(CPU_SPEC, dtype, rtol)
    assert cpu.backend == "cpu"


# ------------------------------------------------------------------ what the penalty does

def test_penalty_makes_the_code_less_sensitive_on_digits():
    """Same network, seed and data; only the penalty's weight differs (0 still reports it)."""
    def trained(weight):
        text = f"""
nngraph: 1
name: cae_digits
inputs: {{image: {{shape: [64]}}}}
layers:
  - {{op: dense, name: code, units: 32, activation: sigmoid}}
  - {{op: dense, name: decoded, units: 64, activation: sigmoid}}
outputs: [decoded]
losses:
  - {{op: squared_error, name: reconstruction, in: [decoded, image]}}
  - {{op: contractive, name: cae, in: [code, image], weight: {weight}}}
train:
  optimizer: {{type: adam, lr: 0.01}}
  batch_size: 64
  data: {{dataset: digits, limit: 500}}
"""
        model = nngraph.compile(text, backend="cpu", seed=0)
        train, _ = load_training_data(model.net)
        model.fit(train, epochs=5, verbose=0)
        return model.evaluate(train)

    plain, contracted = trained(0.0), trained(0.3)
    assert contracted["cae"] < 0.5 * plain["cae"], (plain, contracted)
    assert contracted["reconstruction"] < 2 * plain["reconstruction"], (plain, contracted)


# ------------------------------------------------------------------ located errors

def spec_error(tmp_path, text) -> str:
    path = tmp_path / "cae.yaml"
    path.write_text(text)
    with pytest.raises(nngraph.SpecError) as e:
        nngraph.load(str(path))
    message = str(e.value)
    loss_line = next(i for i, line in enumerate(text.splitlines(), 1) if "name: cae," in line)
    assert f"{path}:{loss_line}:" in message, message
    assert "loss 'cae' (contractive)" in message
    return message


def test_a_convolutional_encoder_is_refused(tmp_path):
    text = spec("  - {op: conv2d, name: conv, filters: 2, kernel: 3}\n"
                "  - {op: flatten}\n"
                "  - {op: dense, name: code, units: 3, activation: sigmoid}", input_shape=(1, 5, 5))
    assert "layer 'conv' (conv2d) cannot be differentiated twice" in spec_error(tmp_path, text)


def test_dropout_in_the_encoder_is_refused(tmp_path):
    text = spec("  - {op: dense, name: h, units: 5, activation: tanh}\n"
                "  - {op: dropout, name: drop, rate: 0.2}\n"
                "  - {op: dense, name: code, units: 3, activation: sigmoid}")
    message = spec_error(tmp_path, text)
    assert "layer 'drop' (dropout)" in message and "random" in message


def test_batchnorm_in_the_encoder_is_refused(tmp_path):
    text = spec("  - {op: dense, name: h, units: 5}\n"
                "  - {op: batchnorm, name: bn}\n"
                "  - {op: dense, name: code, units: 3, activation: sigmoid}")
    assert "layer 'bn' (batchnorm)" in spec_error(tmp_path, text)


def test_a_step_activation_is_refused(tmp_path):
    text = spec("  - {op: dense, name: code, units: 3, activation: step}")
    message = spec_error(tmp_path, text)
    assert "layer 'code': activation step" in message and "straight-through" in message


def test_the_input_must_be_an_ancestor_of_the_code(tmp_path):
    text = spec(ENCODERS["one sigmoid layer"], extra_inputs=", other: {shape: [6]}",
                losses="  - {op: contractive, name: cae, in: [code, other]}")
    assert "'code' is not computed from 'other'" in spec_error(tmp_path, text)


def test_the_code_must_be_a_vector(tmp_path):
    text = spec("  - {op: dense, name: code, units: 3}\n  - {op: reshape, name: r, shape: [3, 1]}",
                losses="  - {op: contractive, name: cae, in: [r, image]}")
    assert "code must be a vector of units" in spec_error(tmp_path, text)


def test_a_noisy_input_may_be_named_as_the_input():
    """Noise before the encoder is fine when the penalty is taken at the noisy input."""
    text = ("  - {op: gaussian_noise, name: noisy, stddev: 0.1}\n"
            "  - {op: dense, name: code, units: 3, activation: sigmoid}")
    net = nngraph.load(spec(text, losses="  - {op: contractive, name: cae, in: [code, noisy]}"))
    assert net.node("cae")["borrowed"] == {"W0": "code.W", "b0": "code.b"}
