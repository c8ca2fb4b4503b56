"""rnn, lstm, gru, embedding, batchnorm, dropout, gaussian_noise: shape rules, gradients
(float64 finite differences) and agreement with PyTorch, plus float32 runs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import _VF, nn

from nngraph import random_stream
from nngraph.ops import REGISTRY, RunContext, ShapeError, make_attrs
from op_harness import check_against_torch, check_gradients, forward, make_case

RECURRENT = ["rnn", "lstm", "gru"]
CELLS = {"rnn": _VF.rnn_tanh_cell, "lstm": _VF.lstm_cell, "gru": _VF.gru_cell}


def torch_recurrent(kind):
    """Torch's own cells stepped over the sequence, fed our W, U, b (bu) in torch's layout, so
    autograd maps the gradients back onto ours."""
    def run(xs, p, a):
        x = xs[0]
        h = x.new_zeros(x.shape[0], a.units)
        state = (h, h) if kind == "lstm" else h
        outs = []
        for t in range(x.shape[1]):
            state = CELLS[kind](x[:, t], state, p["W"].T, p["U"].T, p.get("b"), p.get("bu"))
            outs.append(state[0] if kind == "lstm" else state)
        return torch.stack(outs, dim=1) if a.return_sequences else outs[-1]
    return run


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("attrs", [dict(units=3), dict(units=2, return_sequences=True),
                                   dict(units=2, use_bias=False)])
def test_recurrent_gradients_and_torch(kind, attrs):
    check_gradients(kind, attrs, [(4, 3)])
    check_against_torch(kind, attrs, [(4, 3)], torch_recurrent(kind))


@pytest.mark.parametrize("kind", RECURRENT)
def test_recurrent_matches_torch_modules(kind):
    """Our weights copied into nn.RNN / nn.LSTM / nn.GRU: proves gate order and the GRU form."""
    steps, feats, units = 5, 3, 4
    op, a, xs, p = make_case(kind, dict(units=units, return_sequences=True), [(steps, feats)])
    module = {"rnn": nn.RNN(feats, units, nonlinearity="tanh", batch_first=True),
              "lstm": nn.LSTM(feats, units, batch_first=True),
              "gru": nn.GRU(feats, units, batch_first=True)}[kind].double()
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(p["W"].T))
        module.weight_hh_l0.copy_(torch.tensor(p["U"].T))
        module.bias_ih_l0.copy_(torch.tensor(p["b"]))
        module.bias_hh_l0.copy_(torch.tensor(p.get("bu", np.zeros_like(p["b"]))))
    y, ctx = forward(op, a, xs, p)
    tx = torch.tensor(xs[0], requires_grad=True)
    ty, _ = module(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)

    gy = np.random.default_rng(3).normal(size=y.shape)
    (gx,), gp = op.backward(ctx, a, xs, p, y, gy)
    (ty * torch.tensor(gy)).sum().backward()
    close = dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(gx, tx.grad.numpy(), **close)
    np.testing.assert_allclose(gp["W"], module.weight_ih_l0.grad.numpy().T, **close)
    np.testing.assert_allclose(gp["U"], module.weight_hh_l0.grad.numpy().T, **close)
    np.testing.assert_allclose(gp["b"], module.bias_ih_l0.grad.numpy(), **close)
    want_bu = module.bias_hh_l0.grad.numpy()
    np.testing.assert_allclose(gp.get("bu", gp["b"]), want_bu, **close)


@pytest.mark.parametrize("kind,gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_recurrent_params_and_flops(kind, gates):
    op = REGISTRY[kind]
    a = make_attrs(kind, units=5)
    specs = op.params(a, [(7, 3)])
    assert specs["W"].shape == (3, 5 * gates) and specs["W"].role == "weight"
    assert specs["U"].shape == (5, 5 * gates) and specs["U"].init == "orthogonal"
    assert specs["b"].shape == (5 * gates,) and specs["b"].role == "bias"
    assert ("bu" in specs) == (kind == "gru")
    assert op.fusion.name == "OPAQUE"
    assert op.shape(a, [(7, 3)]) == (5,)
    assert op.shape(make_attrs(kind, units=5, return_sequences=True), [(7, 3)]) == (7, 5)
    matmuls = 2 * (3 + 5) * gates * 5 * 7
    assert matmuls < op.flops(a, [(7, 3)], (5,)) < 1.5 * matmuls


@pytest.mark.parametrize("kind", RECURRENT)
def test_recurrent_rank_errors(kind):
    a = make_attrs(kind, units=8)
    with pytest.raises(ShapeError, match=rf"{kind} expects \(steps, features\), got 1x28x28.*"
                                         r"shape: \[28, 28\]"):
        REGISTRY[kind].shape(a, [(1, 28, 28)])
    with pytest.raises(ShapeError, match="got 10: .*shape: \\[10, 1\\]"):
        REGISTRY[kind].shape(a, [(10,)])


def test_rank_error_reaches_the_user():
    import nngraph
    from nngraph.spec import load_text
    spec = ("nngraph: 1\nname: t\ninputs:\n  image: {shape: [1, 28, 28]}\n"
            "layers:\n  - {op: lstm, units: 8}\n")
    with pytest.raises(nngraph.SpecError) as e:
        load_text(spec, "net.yaml")
    msg = str(e.value)
    assert "net.yaml:6:" in msg and "error[E030]" in msg
    assert "lstm expects (steps, features), got 1x28x28" in msg


@pytest.mark.parametrize("shape", [(4,), ()])
def test_embedding(shape):
    attrs = dict(vocab=5, dim=3)
    check_gradients("embedding", attrs, [shape])
    check_against_torch("embedding", attrs, [shape], lambda xs, p, a: F.embedding(xs[0], p["W"]))
    assert REGISTRY["embedding"].shape(make_attrs("embedding", **attrs), [shape]) == shape + (3,)


def test_embedding_repeated_indices_accumulate():
    op, a, xs, p = make_case("embedding", dict(vocab=4, dim=2), [(3,)],
                             inputs=[np.array([[1, 1, 1], [1, 0, 1], [2, 2, 2]])])
    y, ctx = forward(op, a, xs, p)
    _, gp = op.backward(ctx, a, xs, p, y, np.ones_like(y))
    np.testing.assert_array_equal(gp["W"][:, 0], [1, 5, 3, 0])


def test_embedding_rank_error():
    with pytest.raises(ShapeError, match=r"\(\) or \(steps,\), got 2x3"):
        REGISTRY["embedding"].shape(make_attrs("embedding", vocab=5, dim=3), [(2, 3)])


BN_SHAPES = [(4,), (3, 5), (2, 3, 3)]


def _bn_torch(xs, p, a):
    return F.batch_norm(xs[0], None, None, p["gamma"], p.get("beta"), training=True, eps=a.eps)


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_batchnorm_training(shape, use_bias):
    attrs = dict(use_bias=use_bias)
    check_gradients("batchnorm", attrs, [shape], rtol=1e-5, atol=1e-6)
    check_against_torch("batchnorm", attrs, [shape], _bn_torch, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_evaluation(shape):
    """Evaluation with given running statistics: an affine map, as torch's eval batch_norm."""
    op, a, xs, p = make_case("batchnorm", dict(eps=1e-3), [shape])
    rng = np.random.default_rng(5)
    stats = {"running_mean": rng.normal(size=shape[0]),
             "running_var": rng.uniform(0.5, 2, shape[0])}
    ctx = RunContext(training=False, state={k: v.copy() for k, v in stats.items()})
    y = op.forward(ctx, a, xs, p)
    gy = rng.normal(size=y.shape)
    (gx,), gp = op.backward(ctx, a, xs, p, y, gy)
    for k, v in stats.items():
        np.testing.assert_array_equal(ctx.state[k], v)          # evaluation leaves them alone
    tx = torch.tensor(xs[0], requires_grad=True)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    ty = F.batch_norm(tx, torch.tensor(stats["running_mean"]), torch.tensor(stats["running_var"]),
                      tp["gamma"], tp["beta"], training=False, eps=a.eps)
    (ty * torch.tensor(gy)).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10)
    for k in p:
        np.testing.assert_allclose(gp[k], tp[k].grad.numpy(), rtol=1e-10)


def test_batchnorm_eval_gradients_fd():
    check_gradients("batchnorm", {}, [(3, 4)], training=False)


def test_batchnorm_params_state_errors():
    op = REGISTRY["batchnorm"]
    a = make_attrs("batchnorm")
    assert (a.momentum, a.eps) == (0.9, 1e-5)
    specs = op.params(a, [(6, 4, 4)])
    assert (specs["gamma"].init, specs["gamma"].role, specs["gamma"].regularize) == \
        ("ones", "other", False)
    assert (specs["beta"].init, specs["beta"].role, specs["beta"].regularize) == \
        ("zeros", "bias", False)
    st = op.state(a, [(6, 4, 4)])
    assert (st["running_mean"].shape, st["running_mean"].init) == ((6,), 0.0)
    assert (st["running_var"].shape, st["running_var"].init) == ((6,), 1.0)
    assert op.fusion.name == "REDUCTION"
    for bad in [(), (1, 2, 3, 4)]:
        with pytest.raises(ShapeError, match="batchnorm expects"):
            op.shape(a, [bad])
    from nngraph.ops import AttrError
    for k, v in [("momentum", 1.0), ("momentum", -0.1), ("eps", 0.0)]:
        with pytest.raises(AttrError):
            make_attrs("batchnorm", **{k: v})


def test_dropout():
    attrs = dict(rate=0.4)
    check_gradients("dropout", attrs, [(4, 5)])

    def masked(xs, p, a):          # the mask the harness's forward draws (seed 1)
        shape = tuple(xs[0].shape)
        keep = random_stream.uniform(random_stream.key(1), random_stream.counters(shape)) >= a.rate
        return xs[0] * torch.tensor(keep) / (1 - a.rate)
    check_against_torch("dropout", attrs, [(4, 5)], masked)
    from nngraph.ops import AttrError
    for bad in (1.0, -0.1):
        with pytest.raises(AttrError):
            make_attrs("dropout", rate=bad)
    assert make_attrs("dropout").rate == 0.5


def test_gaussian_noise():
    attrs = dict(stddev=0.3)
    check_gradients("gaussian_noise", attrs, [(2, 3)])

    def noisy(xs, p, a):           # the noise the harness's forward draws (seed 1)
        e = random_stream.normal(random_stream.key(1), random_stream.counters(tuple(xs[0].shape)),
                                 a.stddev)
        return xs[0] + torch.tensor(e)
    check_against_torch("gaussian_noise", attrs, [(2, 3)], noisy)
    assert make_attrs("gaussian_noise").stddev == 0.1


FLOAT32_CASES = [
    ("rnn", dict(units=3, return_sequences=True), [(4, 2)]),
    ("lstm", dict(units=3), [(4, 2)]),
    ("gru", dict(units=3, return_sequences=True), [(4, 2)]),
    ("embedding", dict(vocab=5, dim=3), [(4,)]),
    ("batchnorm", {}, [(3, 2, 2)]),
    ("dropout", dict(rate=0.3), [(6,)]),
    ("gaussian_noise", {}, [(6,)]),
]


@pytest.mark.parametrize("name,attrs,shapes", FLOAT32_CASES)
@pytest.mark.parametrize("training", [True, False])
def test_float32_keeps_dtype(name, attrs, shapes, training):
    op, a, xs, p = make_case(name, attrs, shapes, dtype=np.float32)
    y, ctx = forward(op, a, xs, p, training)
    assert y.dtype == np.float32
    gy = np.random.default_rng(2).normal(size=y.shape).astype(np.float32)
    gxs, gp = op.backward(ctx, a, xs, p, y, gy)
    for g in [g for g in gxs if g is not None] + list(gp.values()):
        assert g.dtype == np.float32
    for v in ctx.state.values():
        assert v.dtype == np.float32
    # the same case in float64 agrees to float32 precision
    xs64 = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in xs]
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    y64, ctx64 = forward(op, a, xs64, p64, training)
    np.testing.assert_allclose(y, y64, rtol=1e-4, atol=1e-5)
    gxs64, gp64 = op.backward(ctx64, a, xs64, p64, y64, gy.astype(np.float64))
    for k in gp:
        np.testing.assert_allclose(gp[k], gp64[k], rtol=1e-3, atol=1e-4)
