"""The convolution kernels (nngraph.kernels.cpu conv, conv_wide) against the ops' numpy
reference rules, as in test_kernels_cpu.py: float64 to 1e-10 relative, float32 to 1e-4, on
small shapes."""
import numpy as np
import pytest

from kernel_harness import DTYPES, close, empty, randn, reference
from nngraph.kernels.cpu import conv, conv_wide
from nngraph.ops import REGISTRY, RunContext, make_attrs


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


TRANSPOSE_CASES = [  # (N, C, H, W), attrs
    ((2, 3, 4, 5), dict(filters=2, kernel=3)),
    ((2, 3, 4, 5), dict(filters=2, kernel=3, stride=2, padding="same")),
    ((2, 3, 4, 5), dict(filters=2, kernel=[3, 4], stride=[2, 3], padding=[1, 2],
                        output_padding=[1, 2])),
    ((2, 3, 4, 5), dict(filters=2, kernel=2, stride=3, padding="same")),      # hi < 0
    ((2, 3, 4, 5), dict(filters=2, kernel=[2, 3], stride=[3, 2], output_padding=[2, 1])),
    ((2, 3, 6, 5), dict(filters=2, kernel=3, padding=[3, 1])),      # rows reaching nothing
    ((3, 3, 30, 30), dict(filters=4, kernel=3, padding=1)),          # one sample a chunk
    ((2, 12, 3, 3), dict(filters=2, kernel=2, stride=2)),            # gW transposed
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,attrs", TRANSPOSE_CASES)
def test_conv2d_transpose(dtype, shape, attrs):
    rng = np.random.default_rng(3)
    x = randn(rng, shape, dtype)
    n, c, h, w = shape
    a = make_attrs("conv2d_transpose", **attrs)
    kh, kw, f = a.kernel[0], a.kernel[1], a.filters
    p = {"W": randn(rng, (c, f, kh, kw), dtype), "b": randn(rng, (f,), dtype)}
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
    nhw = n * h * w
    cols, xbuf = np.empty((f * kh * kw, nhw), dtype), np.empty((c, nhw), dtype)
    transposed = c > 8 and f * kh * kw < 256       # conv2d_backward's gW.T rule
    gwt = np.empty(f * kh * kw * c, dtype) if transposed else empty(dtype)
    y = np.empty_like(y_ref)
    for b, relu in ((p["b"], False), (p["b"], True), (empty(dtype), False)):
        want = y_ref - (0 if b.size else p["b"][None, :, None, None])
        bad = conv.conv2d_transpose_forward(x, p["W"], b, y, cols, xbuf, relu, *geo)
        close(y, np.maximum(want, 0) if relu else want, dtype, f"y, relu {relu}")
        assert not bad
    for relu in (False, True):              # gy through the forward's relu
        y_relu = np.maximum(y_ref, 0)
        g = gy * (y_relu > 0) if relu else gy
        gw, gb, gx = np.empty_like(p["W"]), np.empty(f, dtype), np.empty_like(x)
        conv.conv2d_transpose_backward(x, p["W"], gy.copy(),
                                       y_relu if relu else empty(dtype, 4), gw, gb, gx, cols,
                                       xbuf, gwt, *geo)
        (gx_want,), gp_want = REGISTRY["conv2d_transpose"].backward(None, a, [x], p, y_ref, g)
        close(gx, gx_want, dtype, f"gx, relu {relu}")
        close(gw, gp_want["W"], dtype, f"gW, relu {relu}")
        close(gb, gp_want["b"], dtype, f"gb, relu {relu}")
    # a frozen weight: gx alone; a network input: gw and gb with gx into scratch
    gx, gb = np.empty_like(x), np.empty(f, dtype)
    conv.conv2d_transpose_backward(x, p["W"], gy.copy(), empty(dtype, 4), empty(dtype, 4),
                                   empty(dtype), gx, cols, xbuf, empty(dtype), *geo)
    close(gx, gx_ref, dtype, "gx alone")
    gw = np.empty_like(p["W"])
    conv.conv2d_transpose_backward(x, p["W"], gy.copy(), empty(dtype, 4), gw, gb,
                                   np.empty_like(x), cols, xbuf, gwt, *geo)
    close(gw, gp["W"], dtype, "gW, gx to scratch")
    close(gb, gp["b"], dtype, "gb, gx to scratch")
    with pytest.raises(ValueError, match="gw needs gx"):
        conv.conv2d_transpose_backward(x, p["W"], gy.copy(), empty(dtype, 4), gw, gb,
                                       empty(dtype, 4), cols, xbuf, gwt, *geo)
