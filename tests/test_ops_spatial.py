"""conv1d, conv2d_transpose, pools, upsample2d, flatten, reshape: gradients, PyTorch agreement,
shape rules against PyTorch's shapes, and the ShapeError messages a user sees."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nngraph.ops import REGISTRY, RunContext, ShapeError, _conv, make_attrs
from op_harness import BATCH, check_against_torch, check_gradients, make_case


def same_pads(a, sizes, kernel, stride, dilation=None):
    """Explicit (lo, hi) pads per axis of 'same' padding, as our ops compute them."""
    dilation = dilation or (1,) * len(sizes)
    return [_conv.out_size(n, k, s, "same", i, dilation=d)[1:]
            for i, (n, k, s, d) in enumerate(zip(sizes, kernel, stride, dilation))]


def torch_pad(x, a, kernel, stride, dilation=None, value=0.0):
    """x padded explicitly when padding is 'same' or a number; torch then pads nothing."""
    spatial = x.shape[2:]
    if a.padding == "valid":
        return x
    if a.padding == "same":
        pads = same_pads(a, spatial, kernel, stride, dilation)
    else:
        pads = [(p, p) for p in a.padding]
    flat = [v for lo_hi in reversed(pads) for v in lo_hi]     # F.pad wants the last axis first
    return F.pad(x, flat, value=value)


# ------------------------------------------------------------------------------ conv1d

CONV1D = [
    (dict(filters=3, kernel=3), (2, 7)),
    (dict(filters=2, kernel=4, stride=2, padding=1), (3, 9)),
    (dict(filters=2, kernel=4, padding="same"), (1, 6)),
    (dict(filters=2, kernel=3, stride=2, padding="same"), (2, 7)),
    (dict(filters=2, kernel=2, dilation=3, use_bias=False), (2, 8)),
]


@pytest.mark.parametrize("attrs,shape", CONV1D)
def test_conv1d(attrs, shape):
    check_gradients("conv1d", attrs, [shape])

    def ref(xs, p, a):
        x = torch_pad(xs[0], a, a.kernel, a.stride, a.dilation)
        return F.conv1d(x, p["W"], p.get("b"), a.stride, 0, a.dilation)
    check_against_torch("conv1d", attrs, [shape], ref)


# -------------------------------------------------------------------- conv2d_transpose

TRANSPOSE = [
    (dict(filters=3, kernel=2), (2, 3, 4)),
    (dict(filters=2, kernel=3, stride=2), (3, 3, 3)),
    (dict(filters=2, kernel=[3, 2], stride=[2, 3], padding=1), (2, 3, 4)),
    (dict(filters=2, kernel=3, stride=2, padding=1, output_padding=1), (1, 3, 4)),
    (dict(filters=2, kernel=4, stride=2, padding=[1, 0], output_padding=[0, 1],
          use_bias=False), (2, 2, 3)),
    (dict(filters=2, kernel=3, stride=2, padding="same"), (2, 3, 4)),
    (dict(filters=2, kernel=[4, 1], stride=[2, 3], padding="same"), (1, 3, 3)),  # k < s: zeros
]


def transpose_ref(xs, p, a):
    x = xs[0]
    if a.padding != "same":
        pad = 0 if a.padding == "valid" else a.padding
        return F.conv_transpose2d(x, p["W"], p.get("b"), a.stride, pad, a.output_padding)
    y = F.conv_transpose2d(x, p["W"], None, a.stride)
    out = [n * s for n, s in zip(x.shape[2:], a.stride)]
    cuts = []                                   # crop (or extend with zeros) to input x stride
    for full, o, k, s in zip(y.shape[2:], out, a.kernel, a.stride):
        lo = max(k - s, 0) // 2
        cuts.append((-lo, o - full + lo))
    y = F.pad(y, [v for c in reversed(cuts) for v in c])
    return y + p["b"][None, :, None, None] if "b" in p else y


@pytest.mark.parametrize("attrs,shape", TRANSPOSE)
def test_conv2d_transpose(attrs, shape):
    check_gradients("conv2d_transpose", attrs, [shape])
    check_against_torch("conv2d_transpose", attrs, [shape], transpose_ref)


def test_conv2d_transpose_is_the_adjoint_of_conv2d():
    """<conv2d(u), v> = <conv2d_transpose(v), u> with the same weights, 'same' padding."""
    rng = np.random.default_rng(3)
    conv = make_attrs("conv2d", filters=2, kernel=3, stride=2, padding="same", use_bias=False)
    tconv = make_attrs("conv2d_transpose", filters=3, kernel=3, stride=2, padding="same",
                       use_bias=False)
    u, v = rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(2, 2, 3, 3))
    w = {"W": rng.normal(size=(2, 3, 3, 3))}      # conv2d: (F, C, kh, kw); transpose: (C, F, ..)
    cu = REGISTRY["conv2d"].forward(RunContext(), conv, [u], w)
    tv = REGISTRY["conv2d_transpose"].forward(RunContext(), tconv, [v], w)
    assert tv.shape == u.shape
    np.testing.assert_allclose((cu * v).sum(), (tv * u).sum(), rtol=1e-12)


# ------------------------------------------------------------------------------- pools

MAXPOOL2D = [
    (dict(size=2), (2, 4, 6)),
    (dict(size=3, stride=2), (1, 7, 5)),
    (dict(size=[3, 2], stride=[1, 2], padding=1), (2, 5, 4)),
    (dict(size=3, stride=2, padding="same"), (2, 6, 5)),
    (dict(size=[2, 3], padding="same"), (1, 5, 7)),
]


def distinct(shape, seed=0):
    """Inputs without ties, so the arg-max (and the gradient) is unambiguous."""
    n = BATCH * int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape((BATCH,) + shape) / n - 0.5


@pytest.mark.parametrize("attrs,shape", MAXPOOL2D)
def test_maxpool2d(attrs, shape):
    x = distinct(shape)
    check_gradients("maxpool2d", attrs, [shape], inputs=[x.copy()])

    def ref(xs, p, a):
        x = torch_pad(xs[0], a, a.size, a.stride or a.size, value=-np.inf)
        return F.max_pool2d(x, a.size, a.stride or a.size)
    check_against_torch("maxpool2d", attrs, [shape], ref, inputs=[x.copy()])


def test_maxpool2d_with_torch_padding():
    check_against_torch("maxpool2d", dict(size=3, stride=2, padding=1), [(2, 5, 6)],
                        lambda xs, p, a: F.max_pool2d(xs[0], 3, 2, 1),
                        inputs=[distinct((2, 5, 6))])


def test_maxpool_gradient_goes_to_first_max_on_ties():
    op = REGISTRY["maxpool2d"]
    a = make_attrs(op, size=2)
    x = np.ones((1, 1, 2, 2))
    ctx = RunContext()
    y = op.forward(ctx, a, [x], {})
    (gx,), _ = op.backward(ctx, a, [x], {}, y, np.ones_like(y))
    np.testing.assert_array_equal(gx, [[[[1, 0], [0, 0]]]])


MAXPOOL1D = [
    (dict(size=2), (2, 6)),
    (dict(size=3, stride=2), (2, 9)),
    (dict(size=3, stride=1, padding=2), (1, 5)),
    (dict(size=4, stride=3, padding="same"), (2, 7)),
]


@pytest.mark.parametrize("attrs,shape", MAXPOOL1D)
def test_maxpool1d(attrs, shape):
    x = distinct(shape)
    check_gradients("maxpool1d", attrs, [shape], inputs=[x.copy()])

    def ref(xs, p, a):
        x = torch_pad(xs[0], a, a.size, a.stride or a.size, value=-np.inf)
        return F.max_pool1d(x, a.size, a.stride or a.size)
    check_against_torch("maxpool1d", attrs, [shape], ref, inputs=[x.copy()])


AVGPOOL2D = MAXPOOL2D + [(dict(size=[2, 3], stride=[3, 1], padding=[1, 2]), (2, 5, 4))]


@pytest.mark.parametrize("attrs,shape", AVGPOOL2D)
def test_avgpool2d(attrs, shape):
    check_gradients("avgpool2d", attrs, [shape])

    def ref(xs, p, a):
        x = torch_pad(xs[0], a, a.size, a.stride or a.size)     # zeros, counted in the mean
        return F.avg_pool2d(x, a.size, a.stride or a.size)
    check_against_torch("avgpool2d", attrs, [shape], ref)


def test_avgpool2d_counts_padding_like_torch():
    check_against_torch("avgpool2d", dict(size=3, stride=2, padding=1), [(2, 5, 6)],
                        lambda xs, p, a: F.avg_pool2d(xs[0], 3, 2, 1, count_include_pad=True))


@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 1, 1)])
def test_global_avgpool2d(shape):
    check_gradients("global_avgpool2d", {}, [shape])
    check_against_torch("global_avgpool2d", {}, [shape],
                        lambda xs, p, a: F.adaptive_avg_pool2d(xs[0], 1).flatten(1))


# ------------------------------------------------------------------ reshaping and copies

@pytest.mark.parametrize("attrs,shape", [
    ({}, (2, 3, 4)), (dict(size=3), (1, 2, 3)), (dict(size=[1, 3]), (2, 3, 2)),
])
def test_upsample2d(attrs, shape):
    check_gradients("upsample2d", attrs, [shape])
    check_against_torch("upsample2d", attrs, [shape],
                        lambda xs, p, a: F.interpolate(xs[0], scale_factor=a.size,
                                                       mode="nearest"))


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (3, 2)])
def test_flatten(shape):
    check_gradients("flatten", {}, [shape])
    check_against_torch("flatten", {}, [shape], lambda xs, p, a: torch.flatten(xs[0], 1))


@pytest.mark.parametrize("attrs,shape", [
    (dict(shape=[4, 6]), (2, 3, 4)),
    (dict(shape=[-1, 2]), (3, 4)),
    (dict(shape=[2, -1, 3]), (12,)),
    (dict(shape=[24]), (2, 3, 4)),
])
def test_reshape(attrs, shape):
    check_gradients("reshape", attrs, [shape])
    check_against_torch("reshape", attrs, [shape],
                        lambda xs, p, a: xs[0].reshape((xs[0].shape[0],) + tuple(a.shape)))


# --------------------------------------------------------------------- float32 in, float32 out

ALL = ([("conv1d", *c) for c in CONV1D[:2]] + [("conv2d_transpose", *c) for c in TRANSPOSE[-3:]]
       + [("maxpool2d", *MAXPOOL2D[3]), ("maxpool1d", *MAXPOOL1D[2]),
          ("avgpool2d", *AVGPOOL2D[-1]),
          ("global_avgpool2d", {}, (2, 3, 3)), ("upsample2d", {}, (2, 2, 3)),
          ("flatten", {}, (2, 3)), ("reshape", dict(shape=[-1]), (2, 3))])


@pytest.mark.parametrize("name,attrs,shape", ALL)
def test_float32_stays_float32(name, attrs, shape):
    op, a, xs, p = make_case(name, attrs, [shape], dtype=np.float32)
    ctx = RunContext()
    y = op.forward(ctx, a, xs, p)
    assert y.dtype == np.float32
    gxs, gp = op.backward(ctx, a, xs, p, y, np.ones_like(y))
    assert gxs[0].dtype == np.float32 and gxs[0].shape == xs[0].shape
    assert all(g.dtype == np.float32 for g in gp.values())


# -------------------------------------------------------------------- shape rules vs torch

def our_shape(name, in_shape, /, **attrs):
    op = REGISTRY[name]
    return op.shape(make_attrs(op, **attrs), [in_shape])


@pytest.mark.parametrize("name,attrs,shape,torch_fn", [
    ("conv1d", dict(filters=4, kernel=5, stride=3, padding=2, dilation=2), (3, 50),
     lambda x: F.conv1d(x, torch.zeros(4, 3, 5), None, 3, 2, 2)),
    ("conv2d_transpose", dict(filters=4, kernel=[5, 3], stride=[3, 2], padding=[2, 1],
                              output_padding=[1, 1]), (3, 7, 9),
     lambda x: F.conv_transpose2d(x, torch.zeros(3, 4, 5, 3), None, (3, 2), (2, 1), (1, 1))),
    ("maxpool2d", dict(size=3, stride=2, padding=1), (2, 28, 27),
     lambda x: F.max_pool2d(x, 3, 2, 1)),
    ("maxpool1d", dict(size=4), (2, 31), lambda x: F.max_pool1d(x, 4)),
    ("avgpool2d", dict(size=[2, 5], stride=[2, 3]), (2, 9, 17),
     lambda x: F.avg_pool2d(x, (2, 5), (2, 3))),
    ("upsample2d", dict(size=[2, 3]), (2, 5, 7),
     lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest")),
    ("global_avgpool2d", {}, (6, 5, 7), lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1)),
])
def test_shape_rule_matches_torch(name, attrs, shape, torch_fn):
    assert our_shape(name, shape, **attrs) == tuple(torch_fn(torch.zeros((1,) + shape)).shape[1:])


def test_same_padding_shapes():
    assert our_shape("conv1d", (2, 11), filters=3, kernel=4, stride=3, padding="same") == (3, 4)
    assert our_shape("maxpool2d", (2, 7, 8), size=2, padding="same") == (2, 4, 4)
    assert our_shape("conv2d_transpose", (2, 7, 5), filters=3, kernel=3, stride=[2, 3],
                     padding="same") == (3, 14, 15)


# ----------------------------------------------------------------------------- ShapeErrors

def shape_error(name, in_shape, /, **attrs):
    with pytest.raises(ShapeError) as e:
        our_shape(name, in_shape, **attrs)
    return e.value


def test_window_larger_than_input():
    e = shape_error("maxpool2d", (1, 3, 8), size=[6, 2], padding=1)
    assert str(e) == "window 6 is larger than the input height 3 (3 + 2x1 padding = 5)"
    assert e.attr == "size"
    assert our_shape("maxpool2d", (1, 3, 8), size=[5, 2], padding=1) == (1, 1, 5)
    e = shape_error("avgpool2d", (1, 8, 3), size=4)
    assert "window 4 is larger than the input width 3" == str(e) and e.attr == "size"
    e = shape_error("conv1d", (2, 4), filters=1, kernel=3, dilation=2, padding=0)
    assert "kernel 5 (dilated: 2x(3-1)+1) is larger than the input length 4" == str(e)
    assert e.attr == "kernel"
    e = shape_error("maxpool1d", (2, 3), size=8, padding=2)
    assert "window 8 is larger than the input length 3 (3 + 2x2 padding = 7)" == str(e)


def test_pool_padding_must_be_smaller_than_window():
    e = shape_error("maxpool2d", (1, 8, 8), size=2, padding=2)
    assert str(e) == "padding 2 must be smaller than the window size 2 along the height"
    assert e.attr == "padding"


@pytest.mark.parametrize("name,shape,attrs,expected", [
    ("maxpool2d", (784,), dict(size=2), "maxpool2d expects (channels, height, width), got 784"),
    ("avgpool2d", (3, 4), dict(size=2), "avgpool2d expects (channels, height, width), got 3x4"),
    ("maxpool1d", (1, 8, 8), dict(size=2), "maxpool1d expects (channels, length), got 1x8x8"),
    ("conv1d", (), dict(filters=2, kernel=3), "conv1d expects (channels, length), got a scalar"),
    ("conv2d_transpose", (4, 4), dict(filters=2, kernel=3),
     "conv2d_transpose expects (channels, height, width), got 4x4"),
    ("global_avgpool2d", (10,), {}, "global_avgpool2d expects (channels, height, width), got 10"),
    ("upsample2d", (2, 3, 4, 5), {}, "upsample2d expects (channels, height, width), got 2x3x4x5"),
])
def test_wrong_rank(name, shape, attrs, expected):
    assert str(shape_error(name, shape, **attrs)) == expected


def test_transpose_padding_errors():
    e = shape_error("conv2d_transpose", (2, 2, 5), filters=1, kernel=3, padding=2)
    assert str(e) == "padding 2 leaves no output along the height: (2 - 1)x1 - 2x2 + 3 + 0 = 0"
    assert e.attr == "padding"
    e = shape_error("conv2d_transpose", (2, 5, 5), filters=1, kernel=3, stride=2,
                    output_padding=2)
    assert "output_padding 2 must be smaller than the stride 2 along the height" == str(e)
    assert e.attr == "output_padding"
    e = shape_error("conv2d_transpose", (2, 5, 5), filters=1, kernel=3, stride=2,
                    padding="same", output_padding=1)
    assert e.attr == "output_padding"


def test_reshape_count_mismatch():
    e = shape_error("reshape", (16, 4, 4), shape=[10, 20])
    assert str(e) == "cannot reshape 16x4x4 = 256 values into 10x20 = 200" and e.attr == "shape"
    e = shape_error("reshape", (16, 4, 4), shape=[10, -1])
    assert str(e) == "cannot reshape 16x4x4 = 256 values into 10x-1: 256 is not a multiple of 10"
    assert our_shape("reshape", (16, 4, 4), shape=[-1, 8]) == (32, 8)


def test_flops():
    assert REGISTRY["conv1d"].flops(make_attrs("conv1d", filters=4, kernel=3), [(2, 10)],
                                    (4, 8)) == 2 * 2 * 3 * 4 * 8
    a = make_attrs("conv2d_transpose", filters=4, kernel=3, stride=2)
    assert REGISTRY["conv2d_transpose"].flops(a, [(2, 5, 5)], (4, 11, 11)) == 2 * 2 * 25 * 4 * 9
    assert REGISTRY["maxpool2d"].flops(make_attrs("maxpool2d", size=2), [(3, 8, 8)],
                                       (3, 4, 4)) == 3 * 16 * 4
    assert REGISTRY["global_avgpool2d"].flops({}, [(3, 4, 5)], (3,)) == 60
    assert REGISTRY["flatten"].flops({}, [(3, 4, 5)], (60,)) == 0
