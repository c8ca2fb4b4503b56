"""dense, conv2d, relu, softmax_cross_entropy: gradients and PyTorch agreement."""
import pytest
import torch
import torch.nn.functional as F

from op_harness import check_against_torch, check_gradients


@pytest.mark.parametrize("attrs,shape", [
    (dict(units=4), (5,)),
    (dict(units=3, use_bias=False), (4,)),
    (dict(units=2), (3, 4)),                      # applied at every step of a sequence
])
def test_dense(attrs, shape):
    check_gradients("dense", attrs, [shape])
    check_against_torch("dense", attrs, [shape],
                        lambda xs, p, a: xs[0] @ p["W"] + (p["b"] if "b" in p else 0))


@pytest.mark.parametrize("attrs,shape", [
    (dict(filters=3, kernel=2), (2, 5, 5)),
    (dict(filters=2, kernel=3, stride=2, padding=1), (3, 6, 7)),
    (dict(filters=2, kernel=[3, 2], padding="same"), (1, 5, 4)),
    (dict(filters=2, kernel=3, stride=2, padding="same"), (2, 6, 6)),
    (dict(filters=2, kernel=2, dilation=2, use_bias=False), (2, 6, 6)),
])
def test_conv2d(attrs, shape):
    check_gradients("conv2d", attrs, [shape])

    def ref(xs, p, a):
        x = xs[0]
        if a.padding == "same":
            from nngraph.ops import _conv
            _, pt, pb = _conv.out_size(x.shape[2], a.kernel[0], a.stride[0], "same", 0,
                                       dilation=a.dilation[0])
            _, pl, pr = _conv.out_size(x.shape[3], a.kernel[1], a.stride[1], "same", 1,
                                       dilation=a.dilation[1])
            x, pad = F.pad(x, (pl, pr, pt, pb)), 0
        else:
            pad = 0 if a.padding == "valid" else a.padding
        return F.conv2d(x, p["W"], p.get("b"), a.stride, pad, a.dilation)
    check_against_torch("conv2d", attrs, [shape], ref)


def test_relu():
    check_gradients("relu", {}, [(4, 3)])
    check_against_torch("relu", {}, [(4, 3)], lambda xs, p, a: torch.relu(xs[0]))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy(reduction):
    attrs = dict(reduction=reduction)
    check_gradients("softmax_cross_entropy", attrs, [(5,), ()], int_high={1: 5})
    check_against_torch("softmax_cross_entropy", attrs, [(5,), ()],
                        lambda xs, p, a: F.cross_entropy(xs[0], xs[1], reduction=a.reduction),
                        int_high={1: 5})
