"""channel_shuffle, pad2d and avgpool2d's count_include_pad: false, the ops the ONNX zoo's
ShuffleNet and GoogLeNet and ONNX's Pad need: their reference rules against PyTorch in
float64 (and finite differences), their attributes and shape errors, and a small network of
all three that trains on the cpu backend (their numpy rules run there as reference groups)
exactly as on the reference backend."""
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nngraph
from op_harness import check_against_torch, check_gradients
from test_backends import matches_reference
from nngraph.backends.cpu import lower
from nngraph.errors import SpecError
from nngraph.ops import REGISTRY, AttrError, RunContext, ShapeError, make_attrs

SHUFFLE_CASES = [({"groups": 2}, (6, 3, 2)), ({"groups": 3}, (6, 4)), ({"groups": 4}, (8, 2, 2)),
                 ({"groups": 1}, (3, 2, 2)), ({"groups": 5}, (5,))]


def torch_shuffle(xs, p, a):
    x = xs[0]
    n, c = x.shape[:2]
    v = x.reshape((n, a.groups, c // a.groups) + tuple(x.shape[2:]))
    return v.transpose(1, 2).reshape(x.shape)


@pytest.mark.parametrize("attrs,shape", SHUFFLE_CASES)
def test_channel_shuffle_matches_torch(attrs, shape):
    check_against_torch("channel_shuffle", attrs, [shape], torch_shuffle, rtol=1e-10,
                        atol=1e-12)


def test_channel_shuffle_is_torchs_module():
    x = np.random.default_rng(0).normal(size=(2, 6, 3, 3))
    y = REGISTRY["channel_shuffle"].forward(RunContext(), make_attrs("channel_shuffle",
                                                                     groups=3), [x], {})
    np.testing.assert_array_equal(y, torch.nn.ChannelShuffle(3)(torch.tensor(x)).numpy())


@pytest.mark.parametrize("attrs,shape", SHUFFLE_CASES[:3])
def test_channel_shuffle_gradients(attrs, shape):
    check_gradients("channel_shuffle", attrs, [shape])


def test_channel_shuffle_groups_must_divide_channels():
    with pytest.raises(ShapeError) as info:
        REGISTRY["channel_shuffle"].shape(make_attrs("channel_shuffle", groups=4), [(6, 2, 2)])
    assert info.value.attr == "groups"
    assert str(info.value) == "groups=4 must divide the input channels (6)"
    with pytest.raises(ShapeError):
        REGISTRY["channel_shuffle"].shape(make_attrs("channel_shuffle", groups=1), [()])


def test_indivisible_shuffle_is_a_located_spec_error(tmp_path):
    text = textwrap.dedent("""\
        nngraph: 1
        name: t
        inputs: {image: {shape: [3, 8, 8]}}
        layers:
          - {op: channel_shuffle, groups: 2}
        outputs: [channel_shuffle_1]
        """)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        nngraph.load(str(path))
    (err,) = info.value.errors
    assert "input channels (3)" in err.message and err.line == 5


TORCH_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}
PAD_CASES = [
    ({"padding": 1}, (2, 3, 4)),
    ({"padding": [1, 2]}, (2, 3, 4)),
    ({"padding": [0, 1, 2, 0], "value": 1.5}, (3, 2, 3)),
    ({"padding": [2, 1, 0, 3], "mode": "reflect"}, (2, 4, 4)),
    ({"padding": [1, 0, 2, 2], "mode": "reflect"}, (1, 3, 3)),
    ({"padding": [3, 1, 0, 2], "mode": "edge"}, (2, 2, 3)),
    ({"padding": [-1, 2, 0, -2]}, (2, 4, 5)),              # constant mode crops
]


def torch_pad(xs, p, a):
    t, b, l, r = a.padding
    if a.mode == "constant":
        return F.pad(xs[0], (l, r, t, b), mode="constant", value=a.value)
    return F.pad(xs[0], (l, r, t, b), mode=TORCH_MODES[a.mode])


@pytest.mark.parametrize("attrs,shape", PAD_CASES)
def test_pad2d_matches_torch(attrs, shape):
    check_against_torch("pad2d", attrs, [shape], torch_pad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("attrs,shape", PAD_CASES)
def test_pad2d_gradients(attrs, shape):
    check_gradients("pad2d", attrs, [shape])


def test_pad2d_attributes_and_shapes():
    op = REGISTRY["pad2d"]
    assert make_attrs("pad2d", padding=2).padding == (2, 2, 2, 2)
    assert make_attrs("pad2d", padding=[1, 3]).padding == (1, 1, 3, 3)
    assert make_attrs("pad2d", padding=1).mode == "constant"
    assert make_attrs("pad2d", padding=1, value=float("-inf")).value == float("-inf")
    assert op.shape(make_attrs("pad2d", padding=[0, 1, 2, 3]), [(4, 5, 6)]) == (4, 6, 11)
    for bad in ([1, 2, 3], "same", [1.5, 1]):
        with pytest.raises(AttrError):
            make_attrs("pad2d", padding=bad)
    with pytest.raises(AttrError):
        make_attrs("pad2d", padding=1, mode="wrap")
    for attrs, shape in [({"padding": 3, "mode": "reflect"}, (1, 3, 5)),
                         ({"padding": -1, "mode": "edge"}, (1, 3, 3)),
                         ({"padding": [-2, -1, 0, 0]}, (1, 3, 3)),
                         ({"padding": 1}, (3, 4))]:
        with pytest.raises(ShapeError):
            op.shape(make_attrs("pad2d", **attrs), [shape])


def test_pad2d_minus_inf_never_wins_a_max_pool():
    x = -np.abs(np.random.default_rng(1).normal(size=(1, 2, 3, 3))) - 5
    y = REGISTRY["pad2d"].forward(RunContext(), make_attrs("pad2d", padding=[0, 1, 0, 1],
                                                           value=float("-inf")), [x], {})
    assert np.isneginf(y[:, :, 3, :]).all() and np.isneginf(y[:, :, :, 3]).all()
    a = make_attrs("maxpool2d", size=2)
    pooled = REGISTRY["maxpool2d"].forward(RunContext(), a, [y], {})
    np.testing.assert_array_equal(pooled, F.max_pool2d(torch.tensor(x), 2, ceil_mode=True))


AVG_CASES = [({"size": 3, "stride": 1, "padding": 1}, (2, 5, 5)),
             ({"size": [3, 2], "stride": [2, 1], "padding": [1, 1]}, (3, 4, 5)),
             ({"size": 3, "stride": 2, "padding": "same"}, (2, 6, 6))]


def torch_avg_exclude(xs, p, a):
    if a.padding == "same":                   # 6 -> 3 with a 3-window, stride 2: pads 0, 1
        x = F.pad(xs[0], (0, 1, 0, 1))
        y = F.avg_pool2d(x, a.size, a.stride)
        counts = F.avg_pool2d(F.pad(torch.ones_like(xs[0]), (0, 1, 0, 1)), a.size, a.stride)
        return y / counts
    return F.avg_pool2d(xs[0], a.size, a.stride, a.padding, count_include_pad=False)


@pytest.mark.parametrize("attrs,shape", AVG_CASES)
def test_avgpool_excluding_padding_matches_torch(attrs, shape):
    attrs = dict(attrs, count_include_pad=False)
    check_against_torch("avgpool2d", attrs, [shape], torch_avg_exclude, rtol=1e-10,
                        atol=1e-12)
    check_gradients("avgpool2d", attrs, [shape])


SPEC = """
nngraph: 1
name: shuffle_pad
inputs: {image: {shape: [2, 6, 6]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, filters: 6, kernel: 3, padding: 1, activation: relu}
  - {op: channel_shuffle, name: shuffle, groups: 3}
  - {op: pad2d, name: mirror, padding: [1, 0, 2, 1], mode: reflect}
  - {op: conv2d, filters: 4, kernel: 3, groups: 2}
  - {op: pad2d, name: edge, padding: 1, mode: edge}
  - {op: avgpool2d, name: avg, size: 3, stride: 1, padding: 1, count_include_pad: false}
  - {op: pad2d, name: low, padding: [1, 0, 1, 0], value: -.inf}
  - {op: maxpool2d, size: 3, stride: 2}
  - {op: pad2d, name: crop, padding: [0, -1, -1, 0], value: 2.0}
  - {op: flatten}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


def test_the_ops_are_reference_groups_on_purpose():
    assert {"channel_shuffle", "pad2d"} <= set(lower.REFERENCE_ONLY)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_spec_trains_on_cpu_as_on_reference(dtype, rtol):
    cpu, ref = matches_reference(SPEC, dtype, rtol)
    assert cpu.backend == "cpu"
