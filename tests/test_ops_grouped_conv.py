"""Grouped conv2d (`groups`), which ONNX zoo networks need (AlexNet's two towers, ShuffleNet,
depthwise convolutions): the reference rules against PyTorch in float64 with stride, padding
and dilation, the parameter shape and FLOPs, the located error for channels the groups do not
divide, and a grouped network that runs its numpy rule on the cpu backend (the hand-written
kernels decline groups) exactly as on the reference backend."""
import textwrap

import pytest
import torch.nn.functional as F

import nngraph
from nngraph import SpecError
from op_harness import check_against_torch, check_gradients
from test_backends import matches_reference
from nngraph.ops import REGISTRY, ShapeError, make_attrs

CASES = [
    ({"filters": 4, "kernel": 3, "groups": 2}, (4, 6, 6)),
    ({"filters": 6, "kernel": [3, 2], "groups": 3, "stride": [2, 1], "padding": 1}, (3, 7, 6)),
    ({"filters": 6, "kernel": 3, "groups": 2, "dilation": 2, "padding": "same"}, (4, 7, 7)),
    ({"filters": 9, "kernel": 2, "groups": 3, "stride": 2, "use_bias": False}, (6, 5, 6)),
    ({"filters": 4, "kernel": 3, "groups": 4, "padding": 1}, (4, 5, 5)),          # depthwise
    ({"filters": 8, "kernel": 3, "groups": 4, "stride": 2, "dilation": [1, 2]}, (4, 8, 9)),
]


def torch_conv(xs, p, a):
    """F.conv2d pads symmetrically; 'same' may pad one more at the end, so pad by hand."""
    from nngraph.ops import conv2d
    _, _, _, ((pt, pb), (pl, pr)) = conv2d._geometry(a, tuple(xs[0].shape[1:]))
    x = F.pad(xs[0], (pl, pr, pt, pb))
    return F.conv2d(x, p["W"], p.get("b"), stride=a.stride, dilation=a.dilation,
                    groups=a.groups)


@pytest.mark.parametrize("attrs,shape", CASES)
def test_grouped_conv_matches_torch(attrs, shape):
    check_against_torch("conv2d", attrs, [shape], torch_conv, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("attrs,shape", CASES[:3])
def test_grouped_conv_gradients(attrs, shape):
    check_gradients("conv2d", attrs, [shape])


def test_groups_one_is_the_default_and_shapes_follow_groups():
    op = REGISTRY["conv2d"]
    plain = make_attrs("conv2d", filters=6, kernel=3)
    assert plain.groups == 1
    assert op.params(plain, [(4, 8, 8)])["W"].shape == (6, 4, 3, 3)
    a = make_attrs("conv2d", filters=6, kernel=3, groups=2)
    assert op.params(a, [(4, 8, 8)])["W"].shape == (6, 2, 3, 3)
    assert op.flops(a, [(4, 8, 8)], (6, 6, 6)) * 2 == op.flops(plain, [(4, 8, 8)], (6, 6, 6))
    depthwise = make_attrs("conv2d", filters=4, kernel=3, groups=4)
    assert op.params(depthwise, [(4, 8, 8)])["W"].shape == (4, 1, 3, 3)


@pytest.mark.parametrize("filters,channels", [(6, 3), (3, 4), (5, 5)])
def test_groups_must_divide_channels_and_filters(filters, channels):
    a = make_attrs("conv2d", filters=filters, kernel=1, groups=2)
    with pytest.raises(ShapeError) as info:
        REGISTRY["conv2d"].shape(a, [(channels, 4, 4)])
    assert info.value.attr == "groups"
    assert str(info.value) == (f"groups=2 must divide both the input channels ({channels}) "
                               f"and filters ({filters})")


def test_indivisible_groups_is_a_located_spec_error(tmp_path):
    text = textwrap.dedent("""\
        nngraph: 1
        name: t
        inputs: {image: {shape: [3, 8, 8]}}
        layers:
          - {op: conv2d, filters: 4, kernel: 3, groups: 2}
        outputs: [conv2d_1]
        """)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        nngraph.load(str(path))
    (err,) = info.value.errors
    assert err.code == "E030" and "input channels (3)" in err.message
    assert err.line == 5 and err.col == text.splitlines()[4].index("groups: 2") + 9


SPEC = """
nngraph: 1
name: grouped
inputs: {image: {shape: [4, 7, 7]}, label: {shape: [], dtype: int64}}
layers:
  - {op: conv2d, filters: 6, kernel: 3, groups: 2, padding: 1, activation: relu}
  - {op: conv2d, filters: 6, kernel: 3, groups: 3, stride: 2, dilation: 1}
  - {op: conv2d, filters: 6, kernel: 1, groups: 6, activation: tanh}
  - {op: maxpool2d, size: 2}
  - {op: conv2d, filters: 4, kernel: 1}
  - {op: flatten}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train: {optimizer: {type: sgd, lr: 0.1, momentum: 0.9}}
"""


def test_grouped_network_on_cpu_matches_reference():
    cpu, ref = matches_reference(SPEC, "float64", 1e-10)
    assert cpu.backend == "cpu"
    assert cpu.params["conv2d_1.W"].shape == (6, 2, 3, 3)


def test_grouped_convs_run_as_reference_groups(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(SPEC)
    from nngraph.cli import main
    assert main(["compile", str(spec), "--emit", str(tmp_path / "out")]) == 0
    rows = [line.split() for line in (tmp_path / "out" / "index.txt").read_text().splitlines()]
    runs = {r[0]: r[2] for r in rows if len(r) > 3 and r[1] in ("forward", "backward")}
    grouped = [k for k in runs if k.startswith(("conv2d_1", "conv2d_2", "conv2d_3"))]
    assert grouped and all(runs[k] == "reference" for k in grouped), runs
    assert any(runs[k] != "reference" for k in runs if k.startswith("conv2d_4")), runs
