"""The hand-written Numba CPU kernels (nngraph.kernels.cpu) against the ops' numpy reference
rules: float64 to 1e-10 relative, float32 to 1e-4, on small shapes. Optimizer updates,
matrix products and checks: test_kernels_blas.py.

Compiling is the cost here, so every kernel meets few signatures: float64 and float32, C-
contiguous arrays, int64 geometry. Cold (empty __pycache__) the file takes ~1-2 minutes of
compilation; warm it runs in a few seconds.
"""
import numpy as np
import pytest

from nngraph.kernels.cpu import conv, conv_wide, embedding, norm, pool, recurrent, softmax
from nngraph.ops import REGISTRY, RunContext, make_attrs

TOL = {np.float64: 1e-10, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]


def close(got, want, dtype, what=""):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(np.abs(want).max(initial=0.0), 1e-30)
    err = np.abs(got - want).max(initial=0.0) / scale
    assert err <= TOL[dtype], f"{what}: relative error {err:.3g}"


def reference(name, attrs, xs, p, training=True, state=None):
    """The op's forward and backward (with a random gy); returns y, gy, gxs, gp, ctx."""
    op = REGISTRY[name]
    a = make_attrs(op, **attrs)
    ctx = RunContext(training=training, state=state if state is not None else {})
    y = op.forward(ctx, a, xs, p)
    gy = np.random.default_rng(9).normal(size=np.shape(y)).astype(xs[0].dtype
                                                                  if xs[0].dtype.kind == "f"
                                                                  else p["W"].dtype)
    gxs, gp = op.backward(ctx, a, xs, p, y, gy)
    return a, y, gy, gxs, gp, ctx


def randn(rng, shape, dtype):
    return rng.normal(size=shape).astype(dtype)


def empty(dtype, ndim=1):
    return np.zeros((0,) * ndim, dtype)


# ---------------------------------------------------------------------------------- conv

CONV2D_CASES = [  # (N, C, H, W), attrs
    ((2, 3, 7, 8), dict(filters=4, kernel=3)),
    ((2, 3, 7, 8), dict(filters=4, kernel=[3, 2], stride=[2, 3], padding="same")),
    ((2, 2, 9, 8), dict(filters=3, kernel=[3, 2], stride=[2, 1], padding=[2, 1],
                        dilation=[2, 3])),
    ((1, 2, 6, 6), dict(filters=2, kernel=2, stride=3, padding="same", dilation=2)),
    ((5, 3, 27, 27), dict(filters=4, kernel=3, padding=1)),   # chunks of 3 and 2 samples
    ((5, 3, 27, 27), dict(filters=12, kernel=3, padding=1)),  # ... and gW transposed
    ((2, 3, 7, 8), dict(filters=4, kernel=[3, 2], padding="same")),  # pads 1, 1, 0, 1
]


def wide_scratch(x, a, f, pads, dtype):
    """cols and ybuf for conv2d_forward_wide, at the sizes codegen plans per sample."""
    (n, c, h, w), (kh, kw), (pt, pb, pl, pr) = x.shape, a.kernel, pads
    ho, wp = h + pt + pb - kh + 1, w + pl + pr
    padded = c * (h + pt + pb) * wp + kw if any(pads) else 0
    return np.empty(n * (c * kh * kw * ho * wp + padded), dtype), np.empty((f, n * ho * wp),
                                                                           dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,attrs", CONV2D_CASES)
def test_conv2d(dtype, shape, attrs):
    rng = np.random.default_rng(0)
    x = randn(rng, shape, dtype)
    a = make_attrs("conv2d", **attrs)
    p = {"W": randn(rng, (a.filters, shape[1]) + a.kernel, dtype),
         "b": randn(rng, (a.filters,), dtype)}
    a, y_ref, gy, (gx_ref,), gp, ctx = reference("conv2d", attrs, [x], p)
    (pt, pb), (pl, pr) = ctx.saved["pads"]
    geo = (*a.stride, pt, pb, pl, pr, *a.dilation)
    n, f, ho, wo = y_ref.shape
    ckk = shape[1] * a.kernel[0] * a.kernel[1]
    cols, ybuf = np.empty((ckk, n * ho * wo), dtype), np.empty((f, n * ho * wo), dtype)
    y = np.empty_like(y_ref)
    y_relu = np.empty_like(y_ref)                # relu applied in the copy back
    conv.conv2d_forward(x, p["W"], p["b"], y_relu, cols, ybuf, True, True, 1, *geo)
    close(y_relu, np.maximum(y_ref, 0), dtype, "relu(y)")
    if geo[:2] + geo[6:] == (1, 1, 1, 1):       # evaluate's and predict's kernel
        wcols, wybuf = wide_scratch(x, a, f, geo[2:6], dtype)
        for relu in (False, True):
            conv_wide.conv2d_forward_wide(x, p["W"], p["b"], y, wcols, wybuf, relu, 1, *geo[2:6])
            close(y, np.maximum(y_ref, 0) if relu else y_ref, dtype, f"wide y, relu {relu}")
    conv.conv2d_forward(x, p["W"], p["b"], y, cols, ybuf, True, False, 1, *geo)
    close(y, y_ref, dtype, "y")
    for x_given in (empty(dtype, 4), x):         # the forward's columns, then recomputed ones
        gw, gb, gx = np.empty_like(p["W"]), np.empty(f, dtype), np.empty_like(x)
        conv.conv2d_backward(x_given, gy, empty(dtype, 4), p["W"], gw, gb, gx, cols, ybuf,
                             np.empty(ckk * f, dtype), *geo)
        close(gx, gx_ref, dtype, "gx")
        close(gw, gp["W"], dtype, "gW")
        close(gb, gp["b"], dtype, "gb")
    # the gradient of relu(conv): gy taken through relu's rule first, in place
    gy_relu = np.where(y_relu > 0, gy, 0).astype(dtype)
    ctx = RunContext()
    REGISTRY["conv2d"].forward(ctx, a, [x], p)
    (gx_relu,), gp_relu = REGISTRY["conv2d"].backward(ctx, a, [x], p, y_ref, gy_relu)
    gw, gb, gx = np.empty_like(p["W"]), np.empty(f, dtype), np.empty_like(x)
    conv.conv2d_backward(x, gy, y_relu, p["W"], gw, gb, gx, cols, ybuf, empty(dtype), *geo)
    assert np.array_equal(gy, gy_relu)
    close(gx, gx_relu, dtype, "gx through relu")
    close(gw, gp_relu["W"], dtype, "gW through relu")
    close(gb, gp_relu["b"], dtype, "gb through relu")


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_pools_in_its_copy_back(dtype):
    """pool=2: the 2x2 max pooling at stride 2 of what pool=1 writes, to the bit, with the
    pooling's rules for NaN (it wins, unless relu made it 0 first) and infinities; the
    note of non-finite values is pool=1's. Chunks of several samples, a short last one."""
    rng = np.random.default_rng(3)
    x, w = randn(rng, (70, 2, 9, 9), dtype), randn(rng, (3, 2, 2, 2), dtype)
    b, op = randn(rng, (3,), dtype), REGISTRY["maxpool2d"]
    cols, ybuf = np.empty(8 * 70 * 64, dtype), np.empty(3 * 70 * 64, dtype)
    geo = (1, 1, 0, 0, 0, 0, 1, 1)
    for bad in (None, np.nan, np.inf, -np.inf):
        if bad is not None:
            x[rng.integers(70), rng.integers(2), rng.integers(9), rng.integers(9)] = bad
        for relu in (False, True):
            y, pooled = np.empty((70, 3, 8, 8), dtype), np.empty((70, 3, 4, 4), dtype)
            noted = conv.conv2d_forward(x, w, b, y, cols, ybuf, False, relu, 1, *geo)
            assert conv.conv2d_forward(x, w, b, pooled, cols, ybuf, False, relu, 2,
                                       *geo) == noted == (bad is not None)
            with np.errstate(invalid="ignore"):
                want = op.forward(RunContext(), make_attrs(op, size=2), [y], {})
            np.testing.assert_array_equal(pooled, want)
    with pytest.raises(ValueError, match="pool"):
        conv.conv2d_forward(x, w, b, pooled, cols, ybuf, True, False, 2, *geo)   # keep
    with pytest.raises(ValueError, match="pool"):
        conv.conv2d_forward(x, w, b, pooled, cols, ybuf, False, False, 3, *geo)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 2, 0)])
def test_conv2d_wide_pools_in_its_copy_back(dtype, pads):
    """conv2d_forward_wide with pool=2: the 2x2 max pooling at stride 2 of what pool=1
    writes, to the bit, with the pooling's rules for NaN (it wins, unless relu made it 0
    first) and infinities; the note of non-finite values is pool=1's, and conv2d_forward's.
    Chunks of several samples, a short last one; a non-finite value in the last sample, whose
    runs end past x. Unpadded and padded (the padded copy of each chunk)."""
    rng = np.random.default_rng(3)
    x, w = randn(rng, (70, 2, 9, 9), dtype), randn(rng, (3, 2, 2, 2), dtype)
    b, op = randn(rng, (3,), dtype), REGISTRY["maxpool2d"]
    a = make_attrs("conv2d", filters=3, kernel=2)
    ho, wo = 8 + pads[0] + pads[1], 8 + pads[2] + pads[3]
    cols, ybuf = wide_scratch(x, a, 3, pads, dtype)
    pcols, pybuf = np.empty(8 * 70 * ho * wo, dtype), np.empty(3 * 70 * ho * wo, dtype)
    for bad, n in ((None, 0), (np.nan, 69), (np.inf, 31), (-np.inf, 69), (np.nan, 3)):
        if bad is not None:                     # added to those before
            x[n, rng.integers(2), rng.integers(9), rng.integers(9)] = bad
        for relu in (False, True):
            y, plain = np.empty((70, 3, ho, wo), dtype), np.empty((70, 3, ho, wo), dtype)
            pooled = np.empty((70, 3, ho // 2, wo // 2), dtype)
            noted = conv_wide.conv2d_forward_wide(x, w, b, y, cols, ybuf, relu, 1, *pads)
            assert conv_wide.conv2d_forward_wide(x, w, b, pooled, cols, ybuf, relu, 2,
                                            *pads) == noted == (bad is not None)
            assert conv.conv2d_forward(x, w, b, plain, pcols, pybuf, False, relu, 1, 1, 1,
                                       *pads, 1, 1) == noted
            np.testing.assert_allclose(y, plain, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                       atol=1e-6)
            with np.errstate(invalid="ignore"):
                want = op.forward(RunContext(), make_attrs(op, size=2), [y], {})
            np.testing.assert_array_equal(pooled, want)
    with pytest.raises(ValueError, match="pool"):
        conv_wide.conv2d_forward_wide(x, w, b, pooled, cols, ybuf, False, 3, *pads)
    with pytest.raises(ValueError, match="scratch"):
        conv_wide.conv2d_forward_wide(x, w, b, y, cols[:100], ybuf, False, 1, *pads)
    with pytest.raises(ValueError, match="geometry"):
        conv_wide.conv2d_forward_wide(x, w, b, y, cols, ybuf, False, 1, 0, 0, 0, 1)


def test_conv2d_optional_outputs_and_bad_geometry():
    rng = np.random.default_rng(1)
    x, w = randn(rng, (2, 3, 5, 5), np.float64), randn(rng, (4, 3, 3, 3), np.float64)
    y = np.empty((2, 4, 3, 3))
    cols, ybuf = np.empty((27, 18)), np.empty((4, 18))
    conv.conv2d_forward(x, w, empty(np.float64), y, cols, ybuf, True, False, 1,
                        1, 1, 0, 0, 0, 0, 1, 1)
    gw = np.empty_like(w)
    conv.conv2d_backward(x, np.ones_like(y), empty(np.float64, 4), w, gw, empty(np.float64),
                         empty(np.float64, 4), cols, ybuf, empty(np.float64),
                         1, 1, 0, 0, 0, 0, 1, 1)
    op, a = REGISTRY["conv2d"], make_attrs("conv2d", filters=4, kernel=3, use_bias=False)
    ctx = RunContext()
    op.forward(ctx, a, [x], {"W": w})
    _, gp = op.backward(ctx, a, [x], {"W": w}, y, np.ones_like(y))
    close(gw, gp["W"], np.float64, "gW")
    with pytest.raises(ValueError, match="geometry"):
        conv.conv2d_forward(x, w, empty(np.float64), y, cols, ybuf, True, False, 1,
                            1, 1, 1, 1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="scratch"):
        conv.conv2d_forward(x, w, empty(np.float64), y, np.empty((27, 8)), ybuf, False, False,
                            1, 1, 1, 0, 0, 0, 0, 1, 1)


@pytest.mark.parametrize("attrs", [dict(filters=3, kernel=3),
                                   dict(filters=3, kernel=4, stride=2, padding=1, dilation=2)])
def test_conv1d_as_conv2d_of_height_1(attrs):
    dtype = np.float64
    rng = np.random.default_rng(2)
    x = randn(rng, (2, 2, 11), dtype)
    a = make_attrs("conv1d", **attrs)
    p = {"W": randn(rng, (3, 2, a.kernel[0]), dtype), "b": np.zeros(3, dtype)}
    a, y_ref, gy, (gx_ref,), gp, _ = reference("conv1d", attrs, [x], p)
    pad = 0 if a.padding == "valid" else a.padding[0]
    geo = (1, a.stride[0], 0, 0, pad, pad, 1, a.dilation[0])
    n, f, lo = y_ref.shape
    w4 = p["W"].reshape(3, 2, 1, a.kernel[0])
    cols, ybuf = np.empty((2 * a.kernel[0], n * lo), dtype), np.empty((f, n * lo), dtype)
    y = np.empty_like(y_ref)
    x4 = x.reshape(2, 2, 1, 11)
    conv.conv2d_forward(x4, w4, p["b"], y.reshape(n, f, 1, lo), cols, ybuf, False, False, 1,
                        *geo)
    close(y, y_ref, dtype, "y")
    gw, gb, gx = np.empty_like(w4), np.empty(f, dtype), np.empty_like(x)
    conv.conv2d_backward(x4, gy.reshape(n, f, 1, lo), empty(dtype, 4), w4, gw, gb,
                         gx.reshape(2, 2, 1, 11), cols, ybuf, empty(dtype), *geo)
    close(gx, gx_ref, dtype, "gx")
    close(gw.reshape(p["W"].shape), gp["W"], dtype, "gW")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("attrs", [dict(filters=2, kernel=3),
                                   dict(filters=2, kernel=3, stride=2, padding="same"),
                                   dict(filters=2, kernel=[3, 4], stride=[2, 3], padding=[1, 2],
                                        output_padding=[1, 2])])
def test_conv2d_transpose(dtype, attrs):
    rng = np.random.default_rng(3)
    x = randn(rng, (2, 3, 4, 5), dtype)
    a = make_attrs("conv2d_transpose", **attrs)
    kh, kw = a.kernel
    p = {"W": randn(rng, (3, 2, kh, kw), dtype), "b": np.zeros(2, dtype)}
    a, y_ref, gy, (gx_ref,), gp, _ = reference("conv2d_transpose", attrs, [x], p)
    pads = []
    for axis in range(2):                   # conv2d's padding of the adjoint (see conv.py)
        k, s, extra = a.kernel[axis], a.stride[axis], a.output_padding[axis]
        if a.padding == "same":
            lo = max(k - s, 0) // 2
            pads += [lo, k - s - lo]
        else:
            pv = 0 if a.padding == "valid" else a.padding[axis]
            pads += [pv, pv - extra]
    geo = (*a.stride, pads[0], pads[1], pads[2], pads[3])
    nhw = 2 * 4 * 5
    y = np.empty_like(y_ref)
    conv.conv2d_transpose_forward(x, p["W"], y, np.empty((3, nhw), dtype),
                                  np.empty((2 * kh * kw, nhw), dtype), *geo)
    close(y, y_ref, dtype, "y")
    gw, gb, gx = np.empty_like(p["W"]), np.empty(2, dtype), np.empty_like(x)
    conv.conv2d_transpose_backward(x, p["W"], gy, gw, gb, gx, np.empty((3, nhw), dtype),
                                   np.empty((2 * kh * kw, nhw), dtype),
                                   np.empty((3, nhw), dtype), empty(dtype), *geo)
    close(gx, gx_ref, dtype, "gx")
    close(gw, gp["W"], dtype, "gW")
    close(gb, gp["b"], dtype, "gb")


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
def test_softmax_cross_entropy(dtype, reduction):
    rng = np.random.default_rng(11)
    x = randn(rng, (6, 5), dtype) * 3
    x[0, 1] = 80                                            # exp would overflow unshifted
    labels = rng.integers(0, 5, 6)
    _, loss_ref, _, _, _, _ = reference("softmax_cross_entropy", dict(reduction=reduction),
                                        [x, labels], {})
    op, a = REGISTRY["softmax_cross_entropy"], make_attrs("softmax_cross_entropy",
                                                          reduction=reduction)
    (g_ref, _), _ = op.backward(RunContext(), a, [x, labels], {}, loss_ref, 0.5)
    gx = np.empty_like(x)
    loss, correct = softmax.softmax_cross_entropy(x, labels, gx, reduction == "mean", 0.5)
    close(loss, loss_ref, dtype, "loss")
    close(gx, g_ref, dtype, "gx")
    assert correct == (x.argmax(1) == labels).sum()
    loss2, _ = softmax.softmax_cross_entropy(x, labels, empty(dtype, 2), reduction == "mean", 1.0)
    assert loss2 == loss
    probs = rng.dirichlet(np.ones(5), 6).astype(dtype)
    _, loss_ref, _, _, _, _ = reference("softmax_cross_entropy", dict(reduction=reduction),
                                        [x, probs], {})
    (g_ref, _), _ = op.backward(RunContext(), a, [x, probs], {}, loss_ref, 0.5)
    loss, correct = softmax.softmax_cross_entropy_probs(x, probs, gx, reduction == "mean", 0.5)
    close(loss, loss_ref, dtype, "loss (probabilities)")
    close(gx, g_ref, dtype, "gx (probabilities)")
    assert correct == (x.argmax(1) == probs.argmax(1)).sum()


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
