"""The hand-written Numba CPU kernels (nngraph.kernels.cpu) against the ops' numpy reference
rules: float64 to 1e-10 relative, float32 to 1e-4, on small shapes. Optimizer updates,
matrix products and checks: test_kernels_blas.py; convolutions: test_kernels_conv.py.

Compiling is the cost here, so every kernel meets few signatures: float64 and float32, C-
contiguous arrays, int64 geometry. Cold (empty __pycache__) the file takes ~1-2 minutes of
compilation; warm it runs in a few seconds.
"""
import numpy as np
import pytest

from kernel_harness import DTYPES, close, empty, randn, reference
from nngraph.kernels.cpu import embedding, norm, pool, recurrent, softmax
from nngraph.ops import REGISTRY, RunContext, make_attrs


# ---------------------------------------------------------------------------------- pool

POOL_CASES = [dict(size=2), dict(size=3, stride=2, padding="same"),
              dict(size=[3, 2], stride=[1, 2], padding=[1, 1])]


def _pool_geometry(a, x_shape, y_shape):
    stride = a.stride or a.size
    pads = []
    for axis in range(2):
        if a.padding == "same":
            size = x_shape[2 + axis]
            total = max((y_shape[2 + axis] - 1) * stride[axis] + a.size[axis] - size, 0)
            pads += [total // 2, total - total // 2]
        else:
            pv = 0 if a.padding == "valid" else a.padding[axis]
            pads += [pv, pv]
    return (*a.size, *stride, *pads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("attrs", POOL_CASES)
def test_maxpool2d(dtype, attrs):
    rng = np.random.default_rng(4)
    x = randn(rng, (2, 3, 7, 6), dtype)
    x[0, 0, :2, :2] = 1.5                                   # a tie: the first cell wins
    a, y_ref, gy, (gx_ref,), _, _ = reference("maxpool2d", attrs, [x], {})
    y, arg, gx = np.empty_like(y_ref), np.empty(y_ref.shape, np.int32), np.empty_like(x)
    pool.maxpool2d_forward(x, y, arg, *_pool_geometry(a, x.shape, y_ref.shape))
    close(y, y_ref, dtype, "y")
    pool.maxpool2d_backward(gy, arg, gx)
    close(gx, gx_ref, dtype, "gx")


def test_maxpool1d_and_nan():
    x = np.random.default_rng(5).normal(size=(2, 2, 9))
    x[1, 1, 4] = np.nan
    a, y_ref, gy, (gx_ref,), _, _ = reference("maxpool1d", dict(size=3, stride=2, padding=1),
                                              [x], {})
    y, arg, gx = np.empty_like(y_ref), np.empty(y_ref.shape, np.int32), np.empty_like(x)
    lo = y_ref.shape[2]
    pool.maxpool2d_forward(x.reshape(2, 2, 1, 9), y.reshape(2, 2, 1, lo),
                           arg.reshape(2, 2, 1, lo), 1, 3, 1, 2, 0, 0, 1, 1)
    np.testing.assert_array_equal(y, y_ref)
    pool.maxpool2d_backward(gy.reshape(2, 2, 1, lo), arg.reshape(2, 2, 1, lo),
                            gx.reshape(2, 2, 1, 9))
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("attrs", POOL_CASES)
def test_avgpool2d(dtype, attrs):
    x = randn(np.random.default_rng(6), (2, 3, 7, 6), dtype)
    a, y_ref, gy, (gx_ref,), _, _ = reference("avgpool2d", attrs, [x], {})
    geo = _pool_geometry(a, x.shape, y_ref.shape)
    y, gx = np.empty_like(y_ref), np.empty_like(x)
    pool.avgpool2d_forward(x, y, *geo)
    close(y, y_ref, dtype, "y")
    pool.avgpool2d_backward(gy, gx, *geo)
    close(gx, gx_ref, dtype, "gx")


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_avgpool_and_upsample(dtype):
    x = randn(np.random.default_rng(7), (2, 3, 4, 5), dtype)
    _, y_ref, gy, (gx_ref,), _, _ = reference("global_avgpool2d", {}, [x], {})
    y, gx = np.empty_like(y_ref), np.empty_like(x)
    pool.global_avgpool2d_forward(x, y)
    pool.global_avgpool2d_backward(gy, gx)
    close(y, y_ref, dtype, "gap y")
    close(gx, gx_ref, dtype, "gap gx")
    _, y_ref, gy, (gx_ref,), _, _ = reference("upsample2d", dict(size=[2, 3]), [x], {})
    y, gx = np.empty_like(y_ref), np.empty_like(x)
    pool.upsample2d_forward(x, y, 2, 3)
    pool.upsample2d_backward(gy, gx, 2, 3)
    close(y, y_ref, dtype, "upsample y")
    close(gx, gx_ref, dtype, "upsample gx")


# ----------------------------------------------------------------------------- batchnorm

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 2)])
def test_batchnorm(dtype, shape):
    rng = np.random.default_rng(8)
    x = randn(rng, shape, dtype) * 2 + 1
    c = shape[1]
    p = {"gamma": randn(rng, (c,), dtype), "beta": randn(rng, (c,), dtype)}
    attrs = dict(momentum=0.8, eps=1e-3)
    state = {"running_mean": randn(rng, (c,), dtype),
             "running_var": rng.uniform(0.5, 2, c).astype(dtype)}
    rm, rv = state["running_mean"].copy(), state["running_var"].copy()
    _, y_ref, gy, (gx_ref,), gp, _ = reference("batchnorm", attrs, [x], p, state=state)
    x3 = x.reshape(shape[0], c, -1)
    y, x_hat, inv_std = np.empty_like(x3), np.empty_like(x3), np.empty(c, dtype)
    norm.batchnorm_forward_train(x3, p["gamma"], p["beta"], y, x_hat, inv_std, rm, rv, 0.8, 1e-3)
    close(y.reshape(shape), y_ref, dtype, "y")
    close(rm, state["running_mean"], dtype, "running mean")
    close(rv, state["running_var"], dtype, "running var")
    gx, gg, gbeta = np.empty_like(x3), np.empty(c, dtype), np.empty(c, dtype)
    norm.batchnorm_backward(gy.reshape(x3.shape), x_hat, p["gamma"], inv_std, gx, gg, gbeta, True)
    close(gx.reshape(shape), gx_ref, dtype, "gx")
    close(gg, gp["gamma"], dtype, "ggamma")
    close(gbeta, gp["beta"], dtype, "gbeta")
    # evaluation: the running statistics, a fixed affine map
    _, y_ref, gy, (gx_ref,), gp, _ = reference("batchnorm", attrs, [x], p, training=False,
                                               state=state)
    norm.batchnorm_forward_eval(x3, p["gamma"], p["beta"], y, x_hat, inv_std, rm, rv, 1e-3)
    close(y.reshape(shape), y_ref, dtype, "eval y")
    norm.batchnorm_backward(gy.reshape(x3.shape), x_hat, p["gamma"], inv_std, gx, gg, gbeta,
                            False)
    close(gx.reshape(shape), gx_ref, dtype, "eval gx")
    close(gg, gp["gamma"], dtype, "eval ggamma")
    y2 = np.empty_like(y)
    norm.batchnorm_forward_eval(x3, p["gamma"], empty(dtype), y2, empty(dtype, 3), inv_std,
                                rm, rv, 1e-3)
    close(y2 + p["beta"][None, :, None], y, dtype, "eval y without beta or x_hat")


# ----------------------------------------------------------------------------- embedding

def test_embedding():
    rng = np.random.default_rng(10)
    idx = rng.integers(0, 7, (3, 5))
    idx[0, :2] = 4                                          # repeated indices accumulate
    p = {"W": randn(rng, (7, 4), np.float64)}
    _, y_ref, gy, _, gp, _ = reference("embedding", dict(vocab=7, dim=4), [idx], p)
    y, gw = np.empty((15, 4)), np.empty((7, 4))
    assert embedding.embedding_forward(idx.reshape(-1), p["W"], y) == -1
    np.testing.assert_array_equal(y.reshape(3, 5, 4), y_ref)
    assert embedding.embedding_backward(idx.reshape(-1), gy.reshape(15, 4), gw) == -1
    close(gw, gp["W"], np.float64, "gW")
    bad = idx.reshape(-1).copy()
    bad[6], bad[9] = 7, -1
    assert embedding.embedding_forward(bad, p["W"], y) == 6
    assert not y[6].any()


# -------------------------------------------------------------------------------- softmax

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_probs(dtype, reduction):
    """(Class-index labels run a generated kernel: tests/test_lower_softmax.py.)"""
    rng = np.random.default_rng(11)
    x = randn(rng, (6, 5), dtype) * 3
    x[0, 1] = 80                                            # exp would overflow unshifted
    op, a = REGISTRY["softmax_cross_entropy"], make_attrs("softmax_cross_entropy",
                                                          reduction=reduction)
    gx = np.empty_like(x)
    probs = rng.dirichlet(np.ones(5), 6).astype(dtype)
    _, loss_ref, _, _, _, _ = reference("softmax_cross_entropy", dict(reduction=reduction),
                                        [x, probs], {})
    (g_ref, _), _ = op.backward(RunContext(), a, [x, probs], {}, loss_ref, 0.5)
    loss, correct = softmax.softmax_cross_entropy_probs(x, probs, gx, reduction == "mean", 0.5)
    close(loss, loss_ref, dtype, "loss (probabilities)")
    close(gx, g_ref, dtype, "gx (probabilities)")
    assert correct == (x.argmax(1) == probs.argmax(1)).sum()
    loss2, _ = softmax.softmax_cross_entropy_probs(x, probs, empty(dtype, 2),
                                                   reduction == "mean", 1.0)
    assert loss2 == loss                                    # gx skipped, loss the same


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_log_softmax(dtype):
    x = randn(np.random.default_rng(12), (4, 6), dtype) * 4
    for name, fwd, bwd in (("softmax", softmax.softmax_forward, softmax.softmax_backward),
                           ("log_softmax", softmax.log_softmax_forward,
                            softmax.log_softmax_backward)):
        _, y_ref, gy, (gx_ref,), _, _ = reference(name, {}, [x], {})
        y, gx = np.empty_like(x), np.empty_like(x)
        fwd(x, y)
        bwd(y, gy, gx)
        close(y, y_ref, dtype, f"{name} y")
        close(gx, gx_ref, dtype, f"{name} gx")


# ------------------------------------------------------------------------------ recurrent

def _rec_case(name, attrs, dtype, seed=13, n=3, steps=4, features=5):
    rng = np.random.default_rng(seed)
    x = randn(rng, (n, steps, features), dtype)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[name]
    h = attrs["units"]
    p = {"W": randn(rng, (features, gates * h), dtype) * 0.5,
         "U": randn(rng, (h, gates * h), dtype) * 0.5,
         "b": randn(rng, (gates * h,), dtype) * 0.5}
    if name == "gru":
        p["bu"] = randn(rng, (gates * h,), dtype) * 0.5
    _, y_ref, gy, (gx_ref,), gp, _ = reference(name, attrs, [x], p)
    return x, p, y_ref, gy, gx_ref, gp, gates


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("sequences", [True, False])
def test_recurrent(dtype, name, sequences):
    h = 6
    x, p, y_ref, gy, gx_ref, gp, g = _rec_case(name, dict(units=h, return_sequences=sequences),
                                              dtype)
    n, steps, f = x.shape
    y = np.empty((n, steps if sequences else 1, h), dtype)
    gy3 = gy.reshape(y.shape)
    xt, hs = np.empty((steps, n, f), dtype), np.empty((steps + 1, n, h), dtype)
    gates, d = np.empty((steps, n, g * h), dtype), np.empty((steps, n, g * h), dtype)
    gh, gc = np.empty((n, h), dtype), np.empty((n, h), dtype)
    gx, gw, gu, gb = (np.empty_like(x), np.empty_like(p["W"]), np.empty_like(p["U"]),
                      np.empty_like(p["b"]))
    ut, gxt = np.empty((g * h, h), dtype), np.empty_like(xt)      # backward's scratch
    if name == "rnn":
        recurrent.rnn_forward(x, p["W"], p["U"], p["b"], y, xt, hs)
        recurrent.rnn_backward(p["W"], p["U"], xt, hs, gy3, gx, gw, gu, gb, d, gh, ut, gxt)
    elif name == "lstm":
        cs, tcs = np.empty_like(hs), np.empty((steps, n, h), dtype)
        recurrent.lstm_forward(x, p["W"], p["U"], p["b"], y, xt, hs, cs, tcs, gates)
        recurrent.lstm_backward(p["W"], p["U"], xt, hs, cs, tcs, gates, gy3, gx, gw, gu, gb,
                                d, gh, gc, ut, gxt)
    else:
        un, gbu = np.empty((steps, n, h), dtype), np.empty_like(p["bu"])
        xw, dx = np.empty_like(gates), np.empty_like(d)
        recurrent.gru_forward(x, p["W"], p["U"], p["b"], p["bu"], y, xw, xt, hs, gates, un)
        recurrent.gru_backward(p["W"], p["U"], xt, hs, gates, un, gy3, gx, gw, gu, gb, gbu,
                               d, dx, gh, ut, gxt)
        close(gbu, gp["bu"], dtype, "gbu")
    close(y.reshape(y_ref.shape), y_ref, dtype, "y")
    close(gx, gx_ref, dtype, "gx")
    close(gw, gp["W"], dtype, "gW")
    close(gu, gp["U"], dtype, "gU")
    close(gb, gp["b"], dtype, "gb")


def test_lstm_without_bias_or_input_gradient():
    dtype, h = np.float64, 3
    attrs = dict(units=h, use_bias=False)
    rng = np.random.default_rng(14)
    x = randn(rng, (2, 3, 4), dtype)
    p = {"W": randn(rng, (4, 4 * h), dtype), "U": randn(rng, (h, 4 * h), dtype)}
    _, y_ref, gy, _, gp, _ = reference("lstm", attrs, [x], p)
    y = np.empty((2, 1, h))
    xt, hs, cs = np.empty((3, 2, 4)), np.empty((4, 2, h)), np.empty((4, 2, h))
    tcs, gates = np.empty((3, 2, h)), np.empty((3, 2, 4 * h))
    recurrent.lstm_forward(x, p["W"], p["U"], empty(dtype), y, xt, hs, cs, tcs, gates)
    close(y[:, 0], y_ref, dtype, "y")
    gw, gu = np.empty_like(p["W"]), np.empty_like(p["U"])
    recurrent.lstm_backward(p["W"], p["U"], xt, hs, cs, tcs, gates, gy.reshape(2, 1, h),
                            empty(dtype, 3), gw, gu, empty(dtype), np.empty((3, 2, 4 * h)),
                            np.empty((2, h)), np.empty((2, h)), np.empty((4 * h, h)),
                            empty(dtype, 3))
    close(gw, gp["W"], dtype, "gW")
    close(gu, gp["U"], dtype, "gU")
    with pytest.raises(ValueError, match="ut must be"):      # scratch of the wrong shape
        recurrent.lstm_backward(p["W"], p["U"], xt, hs, cs, tcs, gates, gy.reshape(2, 1, h),
                                empty(dtype, 3), gw, gu, empty(dtype), np.empty((3, 2, 4 * h)),
                                np.empty((2, h)), np.empty((2, h)), np.empty((h, 4 * h)),
                                empty(dtype, 3))
    with pytest.raises(ValueError, match="gxt must"):
        recurrent.lstm_backward(p["W"], p["U"], xt, hs, cs, tcs, gates, gy.reshape(2, 1, h),
                                np.empty((2, 3, 4)), gw, gu, empty(dtype),
                                np.empty((3, 2, 4 * h)), np.empty((2, h)), np.empty((2, h)),
                                np.empty((4 * h, h)), np.empty((3, 2, 5)))
