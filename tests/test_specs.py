"""The example networks in specs/: each loads cleanly, has the parameter count worked out by
hand, and means the same whether written in YAML or JSON."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

import nngraph

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL_SPECS = sorted(SPECS.glob("*.yaml")) + sorted(SPECS.glob("*.json"))


def test_there_are_examples():
    assert len(ALL_SPECS) >= 20


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_spec_loads_cleanly(path):
    net = nngraph.load(str(path))          # raises SpecError on any error
    assert net.warnings == []
    assert net.description, "every example says what it is"
    assert net.losses and net.outputs
    train = net.train
    for key in ("optimizer", "batch_size", "epochs", "data"):
        assert key in train, f"{path.name}: train.{key} is missing"


# ------------------------------------------------------------------ counts worked by hand

HAND_COUNTS = {
    # conv1 6*(1*5*5)+6 = 156; conv2 16*(6*5*5)+16 = 2,416; flatten 16*4*4 = 256;
    # 256*120+120 = 30,840; 120*84+84 = 10,164; 84*10+10 = 850.
    "lenet5.yaml": 156 + 2416 + 30840 + 10164 + 850,                          # 44,426
    # 784*128+128 = 100,480; 128*64+64 = 8,256; 64*10+10 = 650.
    "mnist_mlp.yaml": (784 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10),   # 109,386
    # dropout has no parameters: the same as mnist_mlp.
    "mnist_mlp_dropout.yaml": 109_386,
    # two dense layers of W 2x2 and b 2 (the biases count although they are frozen).
    "backprop_222.yaml": 2 * (2 * 2 + 2),                                     # 12
    # stem 8*1*3*3+8 = 80; per residual block 2*(8*8*3*3+8) = 1,168, repeated twice;
    # avgpool 2 gives 8x4x4 = 128 features; logits 128*10+10 = 1,290.
    "resnet.yaml": 80 + 2 * 1168 + 1290,                                      # 3,706
    # 4 gates of (W 1x16, U 16x16, b 16) = 4*288; output 16*1+1.
    "lstm_sequence.yaml": 4 * (16 + 256 + 16) + 17,                           # 1,169
    # hidden 4*16+16 = 80; logits 16*3+3 = 51.
    "iris_mlp.json": 80 + 51,                                                 # 131
}


@pytest.mark.parametrize("name,count", sorted(HAND_COUNTS.items()))
def test_parameter_count_by_hand(name, count):
    assert nngraph.load(str(SPECS / name)).num_params == count


def test_lenet5_is_the_design_network():
    net = nngraph.load(str(SPECS / "lenet5.yaml"))
    assert net.num_params == 44_426
    shapes = [net.node(n)["shape"] for n in net.layers()]
    assert shapes == [(6, 24, 24), (6, 12, 12), (16, 8, 8), (16, 4, 4), (256,), (120,), (84,),
                      (10,)]


# ------------------------------------------------------------------ the worked example

def test_backprop_222_literal_weights():
    table = nngraph.load(str(SPECS / "backprop_222.yaml")).param_table()
    # w1..w4 enter the hidden layer, w5..w8 the output; W is (inputs, units), so wk for
    # input i and unit j sits at W[i][j].
    np.testing.assert_allclose(table["hidden.W"].init, [[0.15, 0.25], [0.20, 0.30]])
    np.testing.assert_allclose(table["output.W"].init, [[0.40, 0.50], [0.45, 0.55]])
    np.testing.assert_allclose(table["hidden.b"].init, [0.35, 0.35])
    np.testing.assert_allclose(table["output.b"].init, [0.60, 0.60])
    assert table["hidden.W"].trainable and table["output.W"].trainable
    assert not table["hidden.b"].trainable and not table["output.b"].trainable
    assert table["hidden.b"].lr_mult == 0.0


# ------------------------------------------------------------------ YAML and JSON agree

def _same(a, b) -> bool:
    """Equality that also looks inside numpy arrays (literal initializers)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _structure(net):
    g = net.graph
    nodes = {}
    for name, d in g.nodes(data=True):
        nodes[name] = dict(
            kind=d["kind"], op=d["op"].name if d["op"] is not None else None,
            attrs=dict(d["attrs"]), activation=d["activation"], inputs=list(d["inputs"]),
            shape=d["shape"], dtype=d["dtype"],
            params={p: s.shape for p, s in d["params"].items()})
    return dict(nodes=nodes, edges=sorted(g.edges), inputs=net.inputs, outputs=net.outputs,
                losses=net.losses, train=net.train, clusters=net.clusters,
                params={k: (p.spec.shape, p.init, p.trainable, p.lr_mult, p.regularizer)
                        for k, p in net.param_table().items()})


def _assert_same_network(a, b):
    sa, sb = _structure(a), _structure(b)
    assert list(sa["nodes"]) == list(sb["nodes"])
    for name in sa["nodes"]:
        assert _same(sa["nodes"][name], sb["nodes"][name]), name
    for key in ("edges", "inputs", "outputs", "losses", "train", "clusters", "params"):
        assert _same(sa[key], sb[key]), key
    assert a.num_params == b.num_params


def test_lenet5_yaml_and_json_agree(tmp_path):
    from_yaml = nngraph.load(str(SPECS / "lenet5.yaml"))
    doc = yaml.safe_load((SPECS / "lenet5.yaml").read_text())
    path = tmp_path / "lenet5.json"
    path.write_text(json.dumps(doc, indent=2))
    from_json = nngraph.load(str(path))
    assert from_json.warnings == []
    _assert_same_network(from_yaml, from_json)


def test_iris_json_and_yaml_agree(tmp_path):
    from_json = nngraph.load(str(SPECS / "iris_mlp.json"))
    doc = json.loads((SPECS / "iris_mlp.json").read_text())
    path = tmp_path / "iris_mlp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    from_yaml = nngraph.load(str(path))
    assert from_yaml.warnings == []
    _assert_same_network(from_json, from_yaml)


@pytest.mark.parametrize("name", ["backprop_222.yaml", "inception.yaml", "rbf_network.yaml"])
def test_blocks_and_literals_survive_json(tmp_path, name):
    """Blocks with $parameters and literal weight arrays mean the same in JSON."""
    doc = yaml.safe_load((SPECS / name).read_text())
    path = tmp_path / (Path(name).stem + ".json")
    path.write_text(json.dumps(doc))
    _assert_same_network(nngraph.load(str(SPECS / name)), nngraph.load(str(path)))


# ------------------------------------------------------------------ what the specs exercise

def _specs_using(pred):
    used = []
    for path in ALL_SPECS:
        net = nngraph.load(str(path))
        if any(pred(net.node(n)) for n in net.layers()):
            used.append(path.name)
    return used


def test_the_examples_use_the_per_layer_options():
    assert _specs_using(lambda d: d["attrs"].get("regularizer"))
    assert _specs_using(lambda d: d["attrs"].get("lr_mult", 1.0) != 1.0)
    assert _specs_using(lambda d: d["attrs"].get("trainable") is False)
    assert _specs_using(lambda d: d["attrs"].get("weight_init") is not None)
    assert _specs_using(lambda d: d["cluster"])                 # blocks


def test_inception_module_has_four_branches():
    net = nngraph.load(str(SPECS / "inception.yaml"))
    concat = net.node("mixed/output")
    assert concat["op"].name == "concat"
    assert concat["inputs"] == ["mixed/branch1", "mixed/branch3", "mixed/branch5",
                                "mixed/pool_proj"]
    assert concat["shape"][0] == sum(net.node(b)["shape"][0] for b in concat["inputs"])
    assert net.node("mixed/branch_pool")["shape"] == net.node("stem")["shape"]


def test_resnet_skip_connections():
    net = nngraph.load(str(SPECS / "resnet.yaml"))
    assert net.node("res_1/sum")["inputs"] == ["stem", "res_1/conv_b"]
    assert net.node("res_2/sum")["inputs"] == ["res_1/sum", "res_2/conv_b"]


def test_autoencoders_compare_with_their_input():
    for name in ("autoencoder", "denoising_autoencoder", "sparse_autoencoder",
                 "conv_autoencoder", "stacked_autoencoder"):
        net = nngraph.load(str(SPECS / f"{name}.yaml"))
        (image,) = net.inputs
        reconstruction = [l for l in net.losses if net.node(l)["op"].name == "squared_error"]
        assert reconstruction and net.node(reconstruction[0])["inputs"][1] == image
        assert net.node(net.outputs[0])["shape"] == net.inputs[image].shape


def test_counts_in_comments_match():
    """Every spec's header comment states its total; keep it honest."""
    for path in ALL_SPECS:
        net = nngraph.load(str(path))
        text = path.read_text()
        total = f"{net.num_params:,}"
        assert f"total {total}" in text, f"{path.name}: comment should say 'total {total}'"
