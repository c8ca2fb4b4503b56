"""Losses: gradients, PyTorch agreement for both reductions, stability, dtypes, label checks."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from op_harness import BATCH, check_against_torch, check_gradients
from nngraph.ops import REGISTRY, AttrError, RunContext, ShapeError, make_attrs

REDUCTIONS = pytest.mark.parametrize("reduction", ["mean", "sum"])
rng = np.random.default_rng(3)


def batch_reduce(per_element, a):
    """Sum over each sample's features, then mean or sum over the batch."""
    per_sample = per_element.reshape(per_element.shape[0], -1).sum(1)
    return per_sample.mean() if a.reduction == "mean" else per_sample.sum()


def signs(shape):
    return rng.choice([-1.0, 1.0], size=(BATCH,) + shape)


def away_from(kinks, shape, gap=0.05):
    x = rng.normal(size=(BATCH,) + shape) * 1.5
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + 2 * gap * np.where(x[near] >= k, 1.0, -1.0)
    return x


def check(name, attrs, shapes, torch_fn, inputs=None, int_high=None):
    check_gradients(name, attrs, shapes, inputs=inputs, int_high=int_high)
    check_against_torch(name, attrs, shapes, torch_fn, inputs=inputs, int_high=int_high)


@REDUCTIONS
@pytest.mark.parametrize("factor,shape", [(0.5, (4,)), (1.0, (2, 3))])
def test_squared_error(reduction, factor, shape):
    check("squared_error", dict(reduction=reduction, factor=factor), [shape, shape],
          lambda xs, p, a: batch_reduce(a.factor * (xs[0] - xs[1]) ** 2, a))


def test_half_squared_error_gradient_is_the_difference():
    op, a = REGISTRY["squared_error"], make_attrs("squared_error", reduction="sum")
    x, t = np.array([[0.5, 2.0]]), np.array([[1.0, 1.0]])
    assert op.forward(RunContext(), a, [x, t], {}) == pytest.approx(0.5 * (0.25 + 1.0))
    (gx, gt), _ = op.backward(RunContext(), a, [x, t], {}, None, 1.0)
    np.testing.assert_allclose(gx, x - t)
    assert gt is None


@REDUCTIONS
def test_sigmoid_cross_entropy(reduction):
    shape = (4,)
    targets = rng.uniform(0, 1, size=(BATCH,) + shape)
    check("sigmoid_cross_entropy", dict(reduction=reduction), [shape, shape],
          lambda xs, p, a: batch_reduce(
              F.binary_cross_entropy_with_logits(xs[0], xs[1], reduction="none"), a),
          inputs=[None, targets])


@REDUCTIONS
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_hinge(reduction, margin):
    shape = (2, 3)
    x = away_from([margin, -margin], shape)       # the hinge points, for labels ±1
    check("hinge", dict(reduction=reduction, margin=margin), [shape, shape],
          lambda xs, p, a: batch_reduce(torch.relu(a.margin - xs[1] * xs[0]), a),
          inputs=[x, signs(shape)])


@REDUCTIONS
def test_logistic(reduction):
    shape = (4,)
    check("logistic", dict(reduction=reduction), [shape, shape],
          lambda xs, p, a: batch_reduce(torch.log1p(torch.exp(-xs[1] * xs[0])), a),
          inputs=[None, signs(shape)])


@REDUCTIONS
def test_exponential(reduction):
    shape = (4,)
    check("exponential", dict(reduction=reduction), [shape, shape],
          lambda xs, p, a: batch_reduce(torch.exp(-xs[1] * xs[0]), a),
          inputs=[None, signs(shape)])


def torch_max_margin(xs, p, a):
    x, c = xs
    true = F.one_hot(c, x.shape[1]).bool()
    rivals = (x + a.margin).masked_fill(true, float("-inf")).max(dim=1).values
    return batch_reduce(torch.relu(rivals - x.gather(1, c[:, None])[:, 0]), a)


@REDUCTIONS
@pytest.mark.parametrize("margin", [1.0, 0.2])
def test_max_margin(reduction, margin):
    check("max_margin", dict(reduction=reduction, margin=margin), [(5,), ()], torch_max_margin,
          int_high={1: 5})


def test_max_margin_is_zero_when_the_margin_holds():
    op, a = REGISTRY["max_margin"], make_attrs("max_margin")
    x, c = np.array([[3.0, 1.0, 1.9], [0.0, 0.5, 0.2]]), np.array([0, 2])
    assert op.forward(RunContext(), a, [x, c], {}) == pytest.approx((0 + (1.5 - 0.2)) / 2)
    (gx, _), _ = op.backward(RunContext(), a, [x, c], {}, None, 1.0)
    np.testing.assert_allclose(gx, [[0, 0, 0], [0, 0.5, -0.5]])


def torch_kl(xs, p, a):
    q = xs[0].mean(0).clamp(1e-7, 1 - 1e-7)
    r = a.rho
    return a.beta * (r * torch.log(r / q) + (1 - r) * torch.log((1 - r) / (1 - q))).sum()


@REDUCTIONS
@pytest.mark.parametrize("attrs,shape", [({}, (5,)), (dict(rho=0.3, beta=2.5), (2, 3))])
def test_kl_sparsity(reduction, attrs, shape):
    h = rng.uniform(0.05, 0.95, size=(BATCH,) + shape)
    check("kl_sparsity", dict(attrs, reduction=reduction), [shape], torch_kl, inputs=[h])


def test_kl_sparsity_ignores_reduction_and_clips():
    op = REGISTRY["kl_sparsity"]
    h = rng.uniform(0.05, 0.95, size=(7, 4))
    mean, total = (op.forward(RunContext(), make_attrs(op, reduction=r), [h], {})
                   for r in ("mean", "sum"))
    assert mean == total
    dead = np.zeros((4, 3))                       # every unit silent: rho_hat clipped to 1e-7
    a = make_attrs(op)
    with np.errstate(divide="raise", invalid="raise"):
        y = op.forward(RunContext(), a, [dead], {})
        (g,), _ = op.backward(RunContext(), a, [dead], {}, y, 1.0)
    assert np.isfinite(y) and y > 0
    np.testing.assert_array_equal(g, 0)


@pytest.mark.parametrize("rho", [0.0, 1.0, 1.5, -0.1])
def test_kl_sparsity_rho_must_be_inside_0_1(rho):
    with pytest.raises(AttrError, match="strictly between 0 and 1"):
        make_attrs("kl_sparsity", rho=rho)


@pytest.mark.parametrize("name", ["sigmoid_cross_entropy", "logistic"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_large_logits(name, dtype):
    op, a = REGISTRY[name], make_attrs(name, reduction="sum")
    x = np.array([[-1000.0, -50.0, 50.0, 1000.0]], dtype=dtype)
    t = np.array([[1.0, 1.0, 1.0, 1.0]], dtype=dtype) if name == "logistic" else \
        np.array([[1.0, 0.0, 1.0, 0.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = op.forward(RunContext(), a, [x, t], {})
        (g, _), _ = op.backward(RunContext(), a, [x, t], {}, y, 1.0)
    assert float(y) == pytest.approx(1000 + 50 if name == "logistic" else 1000 + 1000, rel=1e-6)
    np.testing.assert_allclose(g[0], [-1, -1, 0, 0] if name == "logistic" else [-1, 0, 0, 1],
                               atol=1e-20)


LABELLED = [("squared_error", (4,)), ("sigmoid_cross_entropy", (4,)), ("hinge", (4,)),
            ("logistic", (4,)), ("exponential", (4,)), ("max_margin", (5,))]


@pytest.mark.parametrize("name,shape", LABELLED)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_keeps_float32(name, shape, reduction):
    op, a = REGISTRY[name], make_attrs(name, reduction=reduction)
    x = rng.normal(size=(BATCH,) + shape).astype(np.float32)
    t = rng.integers(0, 5, BATCH) if name == "max_margin" else signs(shape)   # float64 labels
    y = op.forward(RunContext(), a, [x, t], {})
    (g, _), _ = op.backward(RunContext(), a, [x, t], {}, y, np.array(1.0))
    assert y.dtype == np.float32 and g.dtype == np.float32


def test_kl_sparsity_keeps_float32():
    op, a = REGISTRY["kl_sparsity"], make_attrs("kl_sparsity")
    h = rng.uniform(0.1, 0.9, size=(BATCH, 4)).astype(np.float32)
    y = op.forward(RunContext(), a, [h], {})
    (g,), _ = op.backward(RunContext(), a, [h], {}, y, np.array(1.0))
    assert y.dtype == np.float32 and g.dtype == np.float32


def shape_error(name, shapes):
    op = REGISTRY[name]
    with pytest.raises(ShapeError) as e:
        op.shape(make_attrs(op), shapes)
    return str(e.value)


@pytest.mark.parametrize("name", ["squared_error", "sigmoid_cross_entropy", "hinge",
                                  "logistic", "exponential"])
def test_labels_must_match_the_prediction(name):
    assert REGISTRY[name].shape(make_attrs(name), [(2, 3), (2, 3)]) == ()
    msg = shape_error(name, [(4,), ()])
    assert msg.startswith("labels of shape [] do not fit predictions of shape [4]: ")
    assert msg.endswith("of the same shape, [4]")


def test_max_margin_label_errors():
    assert REGISTRY["max_margin"].shape(make_attrs("max_margin"), [(5,), ()]) == ()
    assert "one class index per sample (shape [], dtype int64)" in \
        shape_error("max_margin", [(5,), (5,)])
    assert "scores of shape [classes]" in shape_error("max_margin", [(2, 5), ()])
    assert "at least 2 classes, got [1]" in shape_error("max_margin", [(1,), ()])


def test_label_error_reaches_the_user():
    import nngraph
    with pytest.raises(nngraph.SpecError) as e:
        nngraph.load({"nngraph": 1, "name": "t",
                      "inputs": {"x": {"shape": [4]}, "y": {"shape": [3]}},
                      "layers": [{"op": "dense", "name": "out", "units": 2}],
                      "outputs": ["out"],
                      "losses": [{"op": "squared_error", "in": ["out", "y"]}]})
    assert "(squared_error): labels of shape [3] do not fit predictions of shape [2]" \
        in str(e.value)


@REDUCTIONS
@pytest.mark.parametrize("name", ["mean_squared_error", "mse"])
@pytest.mark.parametrize("shape", [(4,), (2, 3)])
def test_mean_squared_error_is_pytorchs_mse(reduction, name, shape):
    """Mean over each sample's elements, then over the batch: with reduction mean, exactly
    torch's MSELoss (the mean over every element)."""
    def want(xs, p, a):
        per = ((xs[0] - xs[1]) ** 2).reshape(len(xs[0]), -1).mean(1)
        return per.mean() if a.reduction == "mean" else per.sum()
    check(name, dict(reduction=reduction), [shape, shape], want)
    x, t = torch.randn(BATCH, *shape, dtype=torch.float64), torch.randn(BATCH, *shape,
                                                                          dtype=torch.float64)
    got = REGISTRY[name].forward(RunContext(), make_attrs(name), [x.numpy(), t.numpy()], {})
    assert float(got) == pytest.approx(float(F.mse_loss(x, t)), rel=1e-12)


@REDUCTIONS
@pytest.mark.parametrize("name", ["mean_absolute_error", "mae"])
def test_mean_absolute_error_is_pytorchs_l1(reduction, name):
    shape = (2, 3)
    x = away_from([0.0], shape)
    t = np.zeros_like(x)                 # kinks where x == t: kept away from for the check
    def want(xs, p, a):
        per = (xs[0] - xs[1]).abs().reshape(len(xs[0]), -1).mean(1)
        return per.mean() if a.reduction == "mean" else per.sum()
    check(name, dict(reduction=reduction), [shape, shape], want, inputs=[x, t])
    got = REGISTRY[name].forward(RunContext(), make_attrs(name), [x, t], {})
    if reduction == "mean":
        assert float(got) == pytest.approx(
            float(F.l1_loss(torch.from_numpy(x), torch.from_numpy(t))), rel=1e-12)
