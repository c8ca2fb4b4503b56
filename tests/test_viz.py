"""Graph pictures: DOT content, clusters, formats, and the fallback without graphviz."""
import os
import re
import shutil

import graphviz
import pytest

import nngraph
from nngraph import viz

CONVNET = """
nngraph: 1
name: small_convnet
inputs:
  image: {shape: [1, 28, 28]}
  label: {shape: [], dtype: int64}
layers:
  - {op: conv2d, name: c1, filters: 6, kernel: 5, activation: relu}
  - {op: maxpool2d, size: 2}
  - {op: flatten}
  - {op: dense, name: logits, units: 10}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

BLOCKS = """
nngraph: 1
name: stacked
inputs:
  x: {shape: [4, 8, 8]}
blocks:
  pair:
    params: {filters: 4}
    layers:
      - {op: conv2d, name: a, filters: $filters, kernel: 3, padding: same, activation: relu}
      - {op: conv2d, name: b, filters: $filters, kernel: 3, padding: same}
  stage:
    layers:
      - {op: pair, name: p, repeat: 2}
layers:
  - {op: stage, name: s}
  - {op: flatten}
  - {op: dense, name: out, units: 3}
"""

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")


@pytest.fixture(scope="module")
def convnet():
    return nngraph.load(CONVNET)


def test_dot_source_has_every_node_and_edge_shape(convnet, tmp_path):
    path = convnet.render(str(tmp_path / "net.dot"))
    assert path == str(tmp_path / "net.dot")
    source = open(path, encoding="utf-8").read()
    for name in convnet.order():
        assert f"<b>{name}</b>" in source
    assert len(re.findall(r"->", source)) == convnet.graph.number_of_edges()
    for shape in ("N×1×28×28", "N×6×24×24", "N×6×12×12", "N×864", "N×10"):
        assert f"label=\"  {shape}  \"" in source
    assert "conv2d+relu" in source and "W 6×1×5×5  b 6" in source
    assert "filters=6 kernel=5" in source
    assert "small_convnet" in source and "8,806 parameters" in source
    assert "rankdir=TB" in source


def test_colours_follow_what_a_node_is(convnet):
    styles = {n: viz.node_style(convnet.node(n)) for n in convnet.order()}
    assert styles == {"image": "input", "label": "input", "c1": "parametric",
                      "maxpool2d_1": "other", "flatten_1": "other", "logits": "parametric",
                      "loss_1": "loss"}


def test_rankdir_lr(convnet):
    assert "rankdir=LR" in viz.to_dot(convnet, "LR").source
    with pytest.raises(ValueError, match="rankdir"):
        viz.to_dot(convnet, "sideways")


def test_blocks_are_nested_clusters():
    net = nngraph.load(BLOCKS)
    source = viz.to_dot(net).source
    assert source.count("subgraph cluster_") == len(net.clusters) == 3   # s, s/p_1, s/p_2
    # The inner instances sit inside the outer one: their subgraphs open before it closes.
    outer = source.index("<b>s</b>")
    inner = [source.index(f"<b>{inst}</b>") for inst in ("s/p_1", "s/p_2")]
    assert all(i > outer for i in inner)
    assert "<i>pair</i>" in source and "<i>stage</i>" in source
    assert source.index("<b>s/p_1/a</b>") > inner[0]


@needs_dot
@pytest.mark.parametrize("ext,magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_pictures_are_written(convnet, tmp_path, ext, magic):
    path = str(tmp_path / "sub" / f"net.{ext}")
    assert convnet.render(path, rankdir="LR") == path
    with open(path, "rb") as f:
        head = f.read(4096)
    assert magic in head
    assert not os.path.exists(tmp_path / "sub" / "net.dot")


def test_missing_dot_writes_the_source_beside(convnet, tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    wanted = str(tmp_path / "net.svg")
    got = convnet.render(wanted)
    assert got == str(tmp_path / "net.dot") and os.path.exists(got)
    assert not os.path.exists(wanted)
    assert "digraph" in open(got, encoding="utf-8").read()
    message = viz.DOT_MISSING.format(dot=got, wanted=wanted)
    assert got in message and wanted in message
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert "dot -Tsvg" in message


def test_dot_failing_at_run_time_also_falls_back(convnet, tmp_path, monkeypatch):
    def missing(self, *args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])
    monkeypatch.setattr(viz.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    got = convnet.render(str(tmp_path / "net.png"))
    assert got == str(tmp_path / "net.dot") and os.path.exists(got)


def test_unknown_extension(convnet, tmp_path):
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.dot"):
        convnet.render(str(tmp_path / "net.jpeg"))
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.dot"):
        convnet.render(str(tmp_path / "net.jpeg"), fused=True)


def test_fused_and_backward_draw_the_program(convnet, tmp_path):
    # The lowered program (tests/test_cli_tools.py checks its clusters and nodes).
    for flags in ({"fused": True}, {"backward": True}, {"fused": True, "backward": True}):
        source = open(convnet.render(str(tmp_path / "net.dot"), **flags), encoding="utf-8").read()
        assert "lowered program" in source and "<b>c1:relu</b>" in source
        assert ("cluster_group_" in source) == bool(flags.get("fused"))
        assert ("vjp:c1" in source) == bool(flags.get("backward"))
        # evaluate and predict pool c1's output in its kernel (codegen/cpu.py _pooled_convs)
        assert ("(evaluate, predict: and" in source) == bool(flags.get("fused"))
        assert ("(evaluate, predict: in c1_relu)" in source) == bool(flags.get("fused"))


def test_loss_weight_shows_when_not_the_default(convnet):
    net = nngraph.load(CONVNET.replace("in: [logits, label]}", "in: [logits, label], weight: 0.5}"))
    assert "weight=0.5" in viz.to_dot(net).source
    assert "weight=" not in viz.to_dot(convnet).source


def test_names_that_need_escaping(tmp_path):
    net = nngraph.load(CONVNET.replace("name: c1,", "name: 'c<1>&:x',")
                       .replace("small_convnet", "a&b"))
    source = viz.to_dot(net).source
    assert "<b>c&lt;1&gt;&amp;:x</b>" in source


def test_attributes_the_spec_writes_show_even_at_their_defaults():
    """dropout's rate: 0.5 is the default, and the user wrote it: the picture says so;
    an attribute left out and at its default stays out."""
    net = nngraph.load({"nngraph": 1, "name": "d", "inputs": {"x": {"shape": [4]}},
                        "layers": [{"op": "dropout", "name": "said", "rate": 0.5},
                                   {"op": "dropout", "name": "unsaid"},
                                   {"op": "dense", "units": 2}]})
    labels = {line.split("[")[0].strip(): line for line in viz.to_dot(net).source.splitlines()
              if "label=<" in line}
    said = next(v for v in labels.values() if "<b>said</b>" in v)
    unsaid = next(v for v in labels.values() if "<b>unsaid</b>" in v)
    assert "rate=0.5" in said and "rate=" not in unsaid
