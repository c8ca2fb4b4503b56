"""net.summary(): per-layer counts, FLOPs, trainability, totals, and no truncation."""
import re

import pytest

import nngraph
from nngraph.summary import human_bytes, human_flops, rows_of

LENET5 = """
nngraph: 1
name: lenet5
inputs:
  image: {shape: [1, 28, 28]}
  label: {shape: [], dtype: int64}
layers:
  - {op: conv2d, name: c1, in: image, filters: 6, kernel: 5, activation: relu}
  - {op: maxpool2d, size: 2}
  - {op: conv2d, filters: 16, kernel: 5, activation: relu}
  - {op: maxpool2d, size: 2}
  - {op: flatten}
  - {op: dense, units: 120, activation: relu}
  - {op: dense, units: 84, activation: relu}
  - {op: dense, name: logits, units: 10}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

LONG = "a_layer_name_that_is_sixty_characters_long_and_then_some_xyz"


@pytest.fixture(scope="module")
def lenet():
    return nngraph.load(LENET5)


def row_of(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.split() and line.split()[0] == name)


def test_lenet5_parameter_counts(lenet):
    rows = {r.name: r for r in rows_of(lenet)}
    counts = [rows[n].params for n in lenet.layers() if rows[n].params]
    assert counts == [156, 2416, 30840, 10164, 850]
    assert sum(r.params for r in rows.values()) == 44426 == lenet.num_params
    text = lenet.summary()
    assert re.search(r"^Parameters\s+44,426\b", text, re.M)
    assert "trainable 44,426" in text and "non-trainable 0" in text
    assert "173.5 KiB" in text                       # 44,426 x 4 bytes
    for count in ("156", "2,416", "30,840", "10,164", "850"):
        assert re.search(rf"\s{count}\s", text)


def test_lenet5_rows(lenet):
    text = lenet.summary()
    assert text.splitlines()[0].startswith("Network lenet5")
    c1 = row_of(text, "c1")
    assert "conv2d+relu" in c1 and "N×6×24×24" in c1 and "yes" in c1
    conv_flops = 2 * 25 * 6 * 24 * 24
    relu_flops = 6 * 24 * 24
    assert f"{conv_flops + relu_flops:,}" in c1
    assert f"{6 * 24 * 24 * 4:,} B" in c1           # float32 activations per sample
    names = [line.split()[0] for line in text.splitlines()[4:15]]
    assert names == lenet.order()                    # inputs, layers, losses in order


def test_lenet5_totals(lenet):
    rows = rows_of(lenet)
    flops = sum(r.flops for r in rows)
    text = lenet.summary()
    assert f"FLOPs per sample        {flops:,} ({human_flops(flops)}, forward)" in text
    act = sum(r.activation_bytes for r in rows if not r.is_loss)
    assert f"{act:,} B ({human_bytes(act)})" in text


def test_long_names_are_never_truncated():
    net = nngraph.load(f"""
nngraph: 1
name: long
inputs:
  x: {{shape: [3, 32, 32]}}
layers:
  - {{op: conv2d, name: {LONG}, filters: 64, kernel: 3, padding: same}}
  - {{op: flatten}}
  - {{op: dense, units: 10}}
""")
    text = net.summary()
    line = row_of(text, LONG)
    assert "N×64×32×32" in line and "1,792" in line
    # Every row's columns line up: the op column starts at the same offset everywhere.
    header = text.splitlines()[2]
    col = header.index("op")
    assert line[col:].startswith("conv2d")
    assert row_of(text, "flatten_1")[col:].startswith("flatten")


def test_frozen_and_partly_trainable_layers():
    net = nngraph.load("""
nngraph: 1
name: transfer
inputs:
  x: {shape: [20]}
layers:
  - {op: dense, name: frozen, units: 8, trainable: false}
  - {op: dense, name: half, units: 4, lr_mult: {b: 0}}
  - {op: dense, name: head, units: 2}
""")
    text = net.summary()
    assert row_of(text, "frozen").split()[4] == "no"
    assert row_of(text, "half").split()[4] == "partly"
    assert row_of(text, "head").split()[4] == "yes"
    assert "non-trainable 172" in text              # 20*8+8 frozen, plus half's 4 biases
    assert row_of(text, "x").split() == ["x", "input", "N×20", "80", "B"]


def test_human_units():
    assert human_bytes(512) == "512 B"
    assert human_bytes(3 * 1024 * 1024) == "3.0 MiB"
    assert human_flops(999) == "999 FLOPs"
    assert human_flops(1_500_000_000) == "1.50 GFLOPs"


def test_running_statistics_are_state_not_parameters():
    net = nngraph.load("""
nngraph: 1
name: bn
inputs:
  x: {shape: [6]}
layers:
  - {op: dense, units: 4}
  - {op: batchnorm}
""")
    text = net.summary()
    assert re.search(r"^Parameters\s+36\b", text, re.M)        # 6*4+4 + gamma 4 + beta 4
    assert re.search(r"^State\s+8 values", text, re.M)          # running mean and variance
