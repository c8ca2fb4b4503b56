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

# Dense layers with relu and the logits without: one generated kernel serves all three
# (backends/cpu/lower/dense.py), and the loss has a kernel of its own.
MLP = """
nngraph: 1
name: mlp
inputs:
  x: {shape: [6]}
  y: {shape: [], dtype: int64}
layers:
  - {op: dense, name: h1, units: 5, activation: relu}
  - {op: dense, name: h2, units: 4, activation: relu}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, y]}
"""

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
    nodes = {n: convnet.node(n) for n in convnet.order()}
    styles = {n: viz.node_style(d["kind"], d["op"], d["params"], n in convnet.label_inputs)
              for n, d in nodes.items()}
    assert styles == {"image": "input", "label": "target", "c1": "parametric",
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
        # evaluate and predict pool c1's output in its kernel (backends/cpu/codegen.py _pooled_convs)
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


# ------------------------------------------------------------------------------ targets

def _node_line(source: str, name: str) -> str:
    """The DOT line of the node whose label starts with <b>name</b>."""
    return next(line for line in source.splitlines()
                if f"label=<<b>{name}</b>" in line and "->" not in line)


def _edge_line(source: str, src: str, dst: str) -> str:
    ids = {n: _node_line(source, n).split()[0] for n in (src, dst)}
    return next(line for line in source.splitlines()
                if line.split()[:3] == [ids[src], "->", ids[dst]])


def test_label_inputs_are_drawn_as_targets(convnet):
    source = viz.to_dot(convnet).source
    fill, border = viz.STYLE["target"]
    label, image = _node_line(source, "label"), _node_line(source, "image")
    assert fill in label and border in label and '"filled,dashed"' in label
    assert "target input" in label
    assert fill not in image and "dashed" not in image and "target" not in image
    assert "style=dashed" in _edge_line(source, "label", "loss_1")
    assert border in _edge_line(source, "label", "loss_1")
    assert "dashed" not in _edge_line(source, "logits", "loss_1")
    assert "dashed" not in _edge_line(source, "image", "c1")
    # the legend says what the dashed box and the dashed edge are
    assert "target input: read by losses only" in source and "a loss's target" in source
    assert "feature input" in source


def test_autoencoder_input_is_a_feature_input_whose_loss_edge_is_the_target():
    net = nngraph.load(os.path.join(ROOT, "specs", "autoencoder.yaml"))
    assert net.label_inputs == []
    source = viz.to_dot(net).source
    image = _node_line(source, "image")
    assert viz.STYLE["input"][0] in image and "dashed" not in image
    assert "target input" not in source                 # neither the node nor the legend
    assert "style=dashed" in _edge_line(source, "image", "loss_1")
    assert "dashed" not in _edge_line(source, "image", "code")
    assert "dashed" not in _edge_line(source, "decoded", "loss_1")


def test_a_network_without_losses_has_no_target_legend():
    net = nngraph.load(CONVNET.split("losses:")[0])
    source = viz.to_dot(net).source
    assert "dashed" not in source and "target" not in source and "feature input" not in source


@pytest.mark.parametrize("flags", [{"fused": True}, {"backward": True}])
def test_program_pictures_draw_targets_too(convnet, flags):
    from nngraph import viz_program
    source = viz_program.to_dot(convnet, **flags).source
    label, image = _node_line(source, "label"), _node_line(source, "image")
    assert viz.STYLE["target"][1] in label and '"filled,dashed"' in label
    assert "target input" in label and "dashed" not in image
    assert "style=dashed" in _edge_line(source, "label", "loss_1")
    assert "dashed" not in _edge_line(source, "image", "c1")
    assert "target input: read by losses only" in source


# ------------------------------------------------------------------------------ shared kernels

def _group_labels(source: str) -> dict:
    """{fused group: (its label node's DOT line, its cluster's attribute lines)}."""
    out = {}
    for chunk in source.split("subgraph cluster_group_")[1:]:
        name, body = chunk.split(" {", 1)
        lines = body.split("}", 1)[0].splitlines()
        out[name] = (next(line for line in lines if re.match(r"\s*L\d+ \[", line)),
                     "\n".join(line for line in lines if "penwidth=" in line and "[" not in line))
    return out


def _truth(net, backward: bool) -> dict:
    """{generated kernel: groups that run it}, from the codegen itself."""
    from nngraph.backends.cpu.calls import codegen, group_calls
    from nngraph.program import build_program
    gen = codegen(build_program(net))
    users: dict = {}
    for name, c in group_calls(gen.program, gen=gen).items():
        if backward or c.group.kind != "backward":
            for k in dict.fromkeys(c.callees):
                if k in gen.kernels_by_code:
                    users.setdefault(k, []).append(name)
    return users


@pytest.mark.parametrize("backward", [False, True])
def test_a_shared_kernel_gets_one_short_name_and_its_clusters_say_shared(backward):
    from nngraph import viz_program
    net = nngraph.load(MLP)
    labels = _group_labels(viz_program.to_dot(net, fused=True, backward=backward).source)
    truth = _truth(net, backward)
    shared = {k: groups for k, groups in truth.items() if len(groups) > 1}
    assert shared["k_dense"] == ["h1_relu", "h2_relu", "logits"]
    names = set()
    for kernel, groups in truth.items():
        heads = {re.search(r"label=<<b>(.*?)</b>", labels[g][0]).group(1) for g in groups}
        assert len(heads) == 1                           # one name in every group
        head = heads.pop()
        for g in groups:
            label, cluster = labels[g]
            if kernel in shared:
                assert re.fullmatch(r"K\d+: .+", head) and head not in names
                assert f"shared (×{len(groups)})" in label
                assert kernel in label                   # the tooltip names the function
                assert "penwidth=2.8" in cluster
            else:
                assert head == kernel and "shared" not in label
                assert "penwidth=1.4" in cluster
        names.add(head)
    first = re.search(r"label=<<b>(.*?)</b>", labels["h1_relu"][0]).group(1)
    assert first.endswith(": dense[+relu]")               # the logits have no relu
    assert "<b>k_loss_1</b>" in labels["loss_1"][0]


def test_unique_kernels_keep_their_names(convnet):
    from nngraph import viz_program
    source = viz_program.to_dot(convnet, fused=True).source
    assert "<b>k_logits</b>" in source and "<b>k_loss_1</b>" in source
    assert "shared" not in source and "K1:" not in source and "penwidth=2.8" not in source


def test_merged_op_names():
    from nngraph.viz_program import _merged
    assert _merged([["dense", "relu"], ["dense", "relu"], ["dense"]]) == "dense[+relu]"
    assert _merged([["maxpool2d"], ["maxpool2d"]]) == "maxpool2d"
    assert _merged([["relu"], ["add", "relu"]]) == "[add]+relu"


@needs_dot
def test_shared_kernels_picture_is_drawn(tmp_path):
    path = str(tmp_path / "mlp.svg")
    assert nngraph.load(MLP).render(path, fused=True) == path
    svg = open(path, encoding="utf-8").read()
    assert "K1: dense[+relu]" in svg and "shared (×3)" in svg
