"""The hand-written CUDA kernels (kernels/cuda) against numpy, at edge sizes: one row, sizes
that are not multiples of a block or a tile, empty inner dimensions; float32 and float64."""
import numpy as np
import pytest
from numba import cuda

from nngraph.kernels.cuda import gemm, optim, reduce
from nngraph.kernels.cpu import optim as cpu_optim

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def _dev(x):
    return cuda.to_device(np.ascontiguousarray(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 5, 3), (17, 3, 2), (5, 0, 4), (33, 18, 7)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("kernel", ["tiled", "small"])
def test_gemm_matches_numpy(dtype, m, k, n, ta, tb, kernel, monkeypatch):
    """Both kernels: the tiled one (forced) and the one for small products (these are)."""
    if kernel == "tiled":
        monkeypatch.setenv("NNGRAPH_CUDA_GEMM", "tiled")
    else:
        assert m * n * k <= gemm.SMALL
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    want = 0.5 * (a.T if ta else a) @ (b.T if tb else b) + 2.0 * c
    dc = _dev(c)
    gemm.gemm(0.5, _dev(a), ta, _dev(b), tb, 2.0, dc)
    np.testing.assert_allclose(dc.copy_to_host(), want, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("kernel", ["tiled", "small"])
def test_gemm_with_beta_zero_ignores_what_c_held(kernel, monkeypatch):
    if kernel == "tiled":
        monkeypatch.setenv("NNGRAPH_CUDA_GEMM", "tiled")
    a, b = np.ones((2, 3)), np.ones((3, 2))
    dc = _dev(np.full((2, 2), np.nan))
    gemm.gemm(1.0, _dev(a), False, _dev(b), False, 0.0, dc)
    np.testing.assert_array_equal(dc.copy_to_host(), np.full((2, 2), 3.0))


def test_gemm_refuses_shapes_that_do_not_agree():
    with pytest.raises(ValueError, match="op\\(a\\) 2x3 @ op\\(b\\) 2x2"):
        gemm.gemm(1.0, _dev(np.ones((2, 3))), False, _dev(np.ones((2, 2))), False, 0.0,
                  _dev(np.zeros((2, 2))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,cols", [(1, 1), (7, 300), (64, 10)])
def test_column_sums(dtype, rows, cols):
    x = np.random.default_rng(rows).standard_normal((rows, cols)).astype(dtype)
    out = np.ones(cols, dtype)
    d = _dev(out)
    reduce.column_sums(_dev(x), d, beta=1.0)
    np.testing.assert_allclose(d.copy_to_host(), x.sum(0) + 1, rtol=RTOL[dtype] * 10)
    reduce.column_sums(_dev(x), d)
    np.testing.assert_allclose(d.copy_to_host(), x.sum(0), rtol=RTOL[dtype] * 10)


@pytest.mark.parametrize("n", [1, 5, 300])
def test_total(n):
    x = np.random.default_rng(n).standard_normal(n)
    out = _dev(np.zeros(1))
    reduce.total(_dev(x), out, scale=1 / n)
    np.testing.assert_allclose(out.copy_to_host()[0], x.mean(), rtol=1e-12)


@pytest.mark.parametrize("n,classes,dtype", [(1, 1, np.float32), (1, 3, np.float64),
                                              (4, 10, np.float32), (2, 300, np.float64)])
def test_softmax_cross_entropy_forward_and_gradient(n, classes, dtype):
    rng = np.random.default_rng(classes)
    x = (rng.standard_normal((n, classes)) * 5).astype(dtype)
    labels = rng.integers(0, classes, n)
    shifted = x.astype(np.float64) - x.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    want_loss = -logp[np.arange(n), labels]
    want_g = np.exp(logp)
    want_g[np.arange(n), labels] -= 1
    loss, g = _dev(np.zeros(n, dtype)), _dev(np.zeros((n, classes), dtype))
    reduce.softmax_cross_entropy(_dev(x), _dev(labels), loss, g, scale=1 / n)
    tol = RTOL[dtype] * 10
    np.testing.assert_allclose(loss.copy_to_host(), want_loss, rtol=tol, atol=tol)
    np.testing.assert_allclose(g.copy_to_host(), want_g / n, rtol=tol, atol=tol)
    only = _dev(np.zeros(n, dtype))           # the loss alone: g without rows
    reduce.softmax_cross_entropy(_dev(x), _dev(labels), only, _dev(np.zeros((0, classes), dtype)))
    np.testing.assert_allclose(only.copy_to_host(), want_loss, rtol=tol, atol=tol)


def test_softmax_cross_entropy_refuses_an_empty_batch():
    with pytest.raises(ValueError, match="empty batch"):
        reduce.softmax_cross_entropy(_dev(np.zeros((0, 3))), _dev(np.zeros(0, np.int64)),
                                     _dev(np.zeros(1)), _dev(np.zeros((0, 3))))


def _segments():
    """Three parameters of 5, 300 and 2 values; the middle one frozen."""
    start, end = np.array([0, 5, 305]), np.array([5, 305, 307])
    return start, end, np.array([1.0, 0.0, 0.5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam"])
def test_optimizer_steps_match_the_cpu_kernels(dtype, kind):
    rng = np.random.default_rng(7)
    start, end, seg_lr = _segments()
    p, g = rng.standard_normal(307).astype(dtype), rng.standard_normal(307).astype(dtype)
    slots = [rng.random(307).astype(dtype) for _ in range(2)]
    host = [p.copy(), g.copy()] + [s.copy() for s in slots]
    dev = [_dev(a) for a in [p, g] + slots]
    segs = [_dev(start), _dev(end), _dev(seg_lr.astype(dtype))]
    for t in range(3):
        if kind in ("sgd", "momentum", "nesterov"):
            mom, nest = (0.0, False) if kind == "sgd" else (0.9, kind == "nesterov")
            optim.sgd_update(*dev[:3], *segs, 0.1, mom, nest)
            cpu_optim.sgd_update(*host[:3], start, end, seg_lr, 0.1, mom, nest)
        elif kind == "rmsprop":
            optim.rmsprop_update(*dev[:3], *segs, 0.01, 0.9, 1e-7)
            cpu_optim.rmsprop_update(*host[:3], start, end, seg_lr, 0.01, 0.9, 1e-7)
        elif kind == "adagrad":
            optim.adagrad_update(*dev[:3], *segs, 0.01, 1e-7)
            cpu_optim.adagrad_update(*host[:3], start, end, seg_lr, 0.01, 1e-7)
        else:
            optim.adam_update(*dev, *segs, 0.01, 0.9, 0.999, 1e-7, t)
            cpu_optim.adam_update(*host, start, end, seg_lr, 0.01, 0.9, 0.999, 1e-7, t)
    tol = RTOL[dtype] * 10
    for d, h in zip(dev, host):
        np.testing.assert_allclose(d.copy_to_host(), h, rtol=tol, atol=tol)
    np.testing.assert_array_equal(dev[0].copy_to_host()[5:305], p[5:305])   # frozen
