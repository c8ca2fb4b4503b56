"""ONNX export (nngraph/onnx/, Model.export_onnx, `nngraph export`): every spec in specs/ and
every op and activation exports, passes onnx's full checker, and ONNX Runtime predicts what
nngraph's reference backend does, at batch 1 and 3 from one file (the batch is dynamic).

Weights, biases and batchnorm statistics are randomised before export, so that a bias put in
the wrong gate, a transposed matrix or a swapped statistic shows (the specs initialise biases
to zero and running statistics to 0 and 1, which would hide them)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import nngraph                                          # noqa: E402
from nngraph.cli import main                            # noqa: E402
from nngraph.cli_tools import random_batch              # noqa: E402
from nngraph.onnx import DEFAULT_OPSET, ExportError, to_onnx   # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL_SPECS = sorted(SPECS.glob("*.yaml")) + sorted(SPECS.glob("*.json"))
TOLERANCE = 1e-5          # of the largest output magnitude


def _randomise(model, seed=0):
    """Every parameter and running statistic drawn afresh (variances positive)."""
    rng = np.random.default_rng(seed)
    for v in model.params.values():
        v[...] = rng.normal(0.0, 0.5, v.shape)
    for layer in model.state.values():
        for k, v in layer.items():
            v[...] = rng.uniform(0.5, 2.0, v.shape) if "var" in k else rng.normal(0, 1, v.shape)
    return model


def _feeds(model, n, seed):
    """Feature and sampled inputs (a GAN's codes), not labels: normal floats (scaled to
    reach past ramp's and step's bends) and indices inside the vocabulary."""
    rng = np.random.default_rng(seed)
    batch = random_batch(model.net, n, rng)
    return {k: (v * 2 if v.dtype.kind == "f" else v) for k, v in batch.items()
            if k in _graph_inputs(model.net)}


def _graph_inputs(net):
    """The exported graph's inputs: the feature and the sampled inputs, in spec order."""
    return [k for k in net.inputs if k in net.feature_inputs or k in net.sampled_inputs]


def _session(proto):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _assert_same_predictions(model, proto, batches=(1, 3)):
    session = _session(proto)
    names = [o.name for o in session.get_outputs()]
    for n in batches:
        feeds = _feeds(model, n, seed=n)
        want = model.predict(feeds)
        want = want if isinstance(want, dict) else {model.net.outputs[0]: want}
        got = dict(zip(names, session.run(None, feeds)))
        assert set(got) == set(want)
        for name, w in want.items():
            assert got[name].shape == w.shape and got[name].dtype == w.dtype, name
            scale = max(float(np.abs(w).max()), 1e-12)
            err = float(np.abs(got[name].astype(np.float64) - w).max())
            assert err <= TOLERANCE * scale, f"{name} at batch {n}: {err:.3g} of {scale:.3g}"


def _exported(model, tmp_path, **kw):
    """Export through Model.export_onnx and read the file back, fully checked."""
    path = model.export_onnx(str(tmp_path / "model.onnx"), **kw)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    return proto


# ------------------------------------------------------------------ every spec in specs/

@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.name)
def test_every_spec_exports_checks_and_predicts_like_nngraph(spec, tmp_path):
    # The VAEs in float64: their sigmoid outputs, after four random layers of up to 784
    # inputs, differ by 1e-4 of their scale in float32 from rounding alone (4e-13 in float64)
    dtype = "float64" if spec.name.startswith("vae") else "float32"
    model = _randomise(nngraph.compile(_deterministic(spec), backend="reference", seed=0,
                                       dtype=dtype))
    proto = _exported(model, tmp_path)
    net = model.net
    assert proto.opset_import[0].version == DEFAULT_OPSET
    # the feature and sampled inputs, never the labels, with their names and a symbolic batch
    assert [i.name for i in proto.graph.input] == _graph_inputs(net)
    assert [o.name for o in proto.graph.output] == net.outputs
    for v in list(proto.graph.input) + list(proto.graph.output):
        assert v.type.tensor_type.shape.dim[0].dim_param == "batch"
    # every layer the outputs read is a node of its own name (a GAN's discriminator, which
    # only training reads, is not exported); every parameter an initializer of its name
    nodes = {n.name for n in proto.graph.node}
    read = set().union(*(nx.ancestors(net.graph, o) | {o} for o in net.outputs))
    assert set(net.layers()) & read <= nodes
    assert not any(loss in nodes for loss in net.losses)
    inits = {i.name for i in proto.graph.initializer}
    assert {k for k in model.params if not k.endswith(".bu") and k.split(".")[0] in read} \
        <= inits
    _assert_same_predictions(model, proto)


def _deterministic(path):
    """The spec, with its reparameterize layers returning the mean: their samples come from
    nngraph's stream in nngraph and from ONNX Runtime's generator in the export, so only
    the mean can be compared (test_reparameterize_exports_a_sample checks the samples)."""
    text = path.read_text()
    if "reparameterize" not in text:
        return str(path)
    spec = yaml.safe_load(text)
    layers = [dict(d, deterministic=True) if d.get("op") == "reparameterize" else d
              for d in spec["layers"]]
    return dict(spec, layers=layers)


def test_reparameterize_exports_a_sample(tmp_path):
    """Without deterministic, the export draws eps from RandomNormalLike: z - mean over the
    standard deviation is N(0, 1) over many rows."""
    spec = {"nngraph": 1, "name": "rep", "inputs": {"m": {"shape": [4]}, "lv": {"shape": [4]}},
            "layers": [{"op": "reparameterize", "name": "z", "in": ["m", "lv"]}],
            "outputs": ["z"]}
    model = nngraph.compile(spec, backend="reference")
    proto = _exported(model, tmp_path)
    assert "RandomNormalLike" in {n.op_type for n in proto.graph.node}
    rng = np.random.default_rng(0)
    m, lv = (rng.normal(size=(5000, 4)).astype(np.float32) for _ in range(2))
    z = _session(proto).run(None, {"m": m, "lv": lv})[0]
    eps = (z - m) / np.exp(lv / 2)
    assert abs(eps.mean()) < 0.05 and abs(eps.std() - 1) < 0.05


# ------------------------------------------------------------------ every op and activation

# Every layer op with the attributes that change its ONNX form (activations: _zoo).
ZOO_LAYERS = [
    {"op": "conv2d", "name": "c_same", "in": "img", "filters": 3, "kernel": [3, 2],
     "stride": 2, "padding": "same", "dilation": [1, 2], "activation": "elu"},
    {"op": "conv2d", "name": "c_num", "in": "img", "filters": 2, "kernel": 3,
     "padding": [1, 2], "use_bias": False, "activation": {"leaky_relu": {"alpha": 0.2}}},
    {"op": "maxpool2d", "name": "mp_same", "in": "c_num", "size": 3, "stride": 2,
     "padding": "same"},
    {"op": "maxpool2d", "name": "mp_num", "in": "img", "size": [2, 3], "padding": [1, 1]},
    {"op": "avgpool2d", "name": "ap_same", "in": "img", "size": [2, 3], "stride": [1, 2],
     "padding": "same"},
    {"op": "avgpool2d", "name": "ap_num", "in": "img", "size": 3, "padding": 1},
    {"op": "global_avgpool2d", "name": "gap", "in": "c_num"},
    {"op": "batchnorm", "name": "bn2d", "in": "img", "use_bias": False, "eps": 0.001,
     "activation": "ramp"},
    {"op": "conv2d_transpose", "name": "ct_pad", "in": "img", "filters": 2, "kernel": 3,
     "stride": 2, "padding": 1, "output_padding": 1, "activation": "softplus"},
    {"op": "conv2d_transpose", "name": "ct_same", "in": "img", "filters": 2, "kernel": 1,
     "stride": 3, "padding": "same", "use_bias": False},
    {"op": "conv2d_transpose", "name": "ct_extra", "in": "img", "filters": 1,
     "kernel": [2, 3], "stride": 3, "output_padding": [2, 1]},
    {"op": "upsample2d", "name": "up", "in": "img", "size": [2, 3]},
    {"op": "concat", "name": "cat_w", "in": ["img", "bn2d", "up_back"], "axis": -1},
    {"op": "maxpool2d", "name": "up_back", "in": "up", "size": [2, 3]},
    {"op": "add", "name": "add2", "in": ["img", "bn2d"]},
    {"op": "add", "name": "add3", "in": ["img", "bn2d", "img"]},
    {"op": "multiply", "name": "mul3", "in": ["img", "bn2d", "img"], "activation": "tanh"},
    {"op": "reshape", "name": "rs", "in": "img", "shape": [-1, 6]},
    {"op": "flatten", "name": "flat", "in": "mp_same"},
    {"op": "conv1d", "name": "c1d", "in": "sig", "filters": 3, "kernel": 3, "stride": 2,
     "dilation": 2, "padding": "same", "activation": "sigmoid"},
    {"op": "conv1d", "name": "c1d_num", "in": "sig", "filters": 2, "kernel": 2,
     "padding": 2},
    {"op": "maxpool1d", "name": "mp1d", "in": "c1d", "size": 2, "padding": "same"},
    {"op": "batchnorm", "name": "bn1d", "in": "sig", "activation": "step"},
    {"op": "batchnorm", "name": "bn0", "in": "vec"},
    {"op": "dense", "name": "dseq", "in": "seq", "units": 5, "activation": "softmax"},
    {"op": "dense", "name": "dseq_nb", "in": "seq", "units": 2, "use_bias": False,
     "activation": "log_softmax"},
    {"op": "dense", "name": "d_nb", "in": "vec", "units": 4, "use_bias": False},
    {"op": "embedding", "name": "emb1", "in": "tok", "vocab": 7, "dim": 3},
    {"op": "embedding", "name": "emb_seq", "in": "toks", "vocab": 7, "dim": 2},
    {"op": "dropout", "name": "drop", "in": "vec", "rate": 0.5},
    {"op": "gaussian_noise", "name": "noise", "in": "vec", "stddev": 1.0},
    {"op": "stop_gradient", "name": "held", "in": "vec"},
    {"op": "lrn", "name": "lrn2d", "in": "img", "size": 3, "alpha": 0.5, "beta": 0.6,
     "bias": 1.5},
    {"op": "lrn", "name": "lrn1d", "in": "sig", "size": 5, "activation": "tanh"},
    {"op": "lrn", "name": "lrn0", "in": "vec", "size": 1, "alpha": 2.0},
    {"op": "prelu", "name": "prelu2d", "in": "img"},
    {"op": "prelu", "name": "prelu0", "in": "vec"},
    {"op": "scale", "name": "scale2d", "in": "img", "activation": "relu"},
    {"op": "scale", "name": "scale0", "in": "vec", "use_bias": False},
    {"op": "global_maxpool2d", "name": "gmp", "in": "c_num"},
    {"op": "channel_shuffle", "name": "shuffle2d", "in": "img", "groups": 2},
    {"op": "channel_shuffle", "name": "shuffle1d", "in": "sig", "groups": 3},
    {"op": "pad2d", "name": "pad_const", "in": "img", "padding": [1, 0, 2, -1], "value": 0.5},
    {"op": "pad2d", "name": "pad_reflect", "in": "img", "padding": [1, 2], "mode": "reflect"},
    {"op": "pad2d", "name": "pad_edge", "in": "img", "padding": 2, "mode": "edge"},
    {"op": "avgpool2d", "name": "ap_excl", "in": "img", "size": 3, "padding": 1,
     "count_include_pad": False},
    {"op": "fill", "name": "filled", "in": "img", "value": 0.25},
    {"op": "reparameterize", "name": "z_mean", "in": ["vec", "layer_tanh"],
     "deterministic": True},
    {"op": "rbm", "name": "rbm_h", "in": "vec", "units": 3},
]


def _zoo() -> dict:
    """ZOO_LAYERS and every activation, as a layer's attribute and as a layer."""
    acts = ["relu", "tanh", "sigmoid", "softplus", "identity", "step", "ramp", "softmax",
            "log_softmax", "softsign", {"elu": {"alpha": 0.7}}, {"leaky_relu": {"alpha": 0.2}},
            {"gaussian": {"sigma": 0.8}}, {"selu": {"alpha": 0.5, "gamma": 1.5}}]
    layers = [dict(d) for d in ZOO_LAYERS]
    for act in acts:
        name = act if isinstance(act, str) else next(iter(act))
        args = {} if isinstance(act, str) else act[name]
        layers.append({"op": "dense", "name": f"act_{name}", "in": "vec", "units": 4,
                       "activation": act})
        layers.append({"op": name, "name": f"layer_{name}", "in": "vec", **args})
    return {"nngraph": 1, "name": "zoo",
            "inputs": {"img": {"shape": [2, 7, 6]}, "sig": {"shape": [3, 10]},
                       "seq": {"shape": [9, 4]}, "vec": {"shape": [6]},
                       "tok": {"shape": [], "dtype": "int64"},
                       "toks": {"shape": [5], "dtype": "int32"}},
            "layers": layers, "outputs": [d["name"] for d in layers]}


def test_every_op_and_activation_exports_and_predicts_like_nngraph(tmp_path):
    model = _randomise(nngraph.compile(_zoo(), backend="reference", seed=0))
    exported = set(nngraph.ops.REGISTRY) - set(nngraph.ops.losses()) - {"rnn", "gru", "lstm"}
    assert exported <= {model.net.node(n)["op"].name for n in model.net.layers()}
    proto = _exported(model, tmp_path)
    ops = {n.name: n.op_type for n in proto.graph.node}
    assert ops["c_same"] == "Conv" and ops["c_same:elu"] == "Elu"
    assert ops["act_step"] == "Gemm" and ops["act_step:step"] == "Cast"
    assert ops["layer_gaussian"] == "Exp" and ops["drop"] == ops["noise"] == "Identity"
    assert ops["emb1"] == "Gather" and ops["bn2d"] == "BatchNormalization"
    assert {i.name for i in proto.graph.input if i.name.startswith("tok")} == {"tok", "toks"}
    _assert_same_predictions(model, proto)


@pytest.mark.parametrize("op", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_recurrent_layers_map_gates_and_layouts(op, sequences, bias, tmp_path):
    """ONNX's gate order (LSTM i,o,f,c; GRU z,r,h with linear_before_reset) and [T, N, F]
    layout, and both outputs (every state, or the last), with and without biases."""
    spec = {"nngraph": 1, "name": f"{op}_net", "inputs": {"x": {"shape": [7, 3]}},
            "layers": [{"op": op, "name": "rec", "units": 4, "return_sequences": sequences,
                        "use_bias": bias}], "outputs": ["rec"]}
    model = _randomise(nngraph.compile(spec, backend="reference", seed=1), seed=2)
    proto = _exported(model, tmp_path)
    node = next(n for n in proto.graph.node if n.name == "rec")
    assert node.op_type == op.upper()
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["hidden_size"] == 4
    assert attrs.get("linear_before_reset", 0) == (op == "gru")
    assert ("rec.b" in {i.name for i in proto.graph.initializer}) == bias
    _assert_same_predictions(model, proto, batches=(1, 3, 5))


def test_names_and_weights_are_the_layers(tmp_path):
    model = _randomise(nngraph.compile(str(SPECS / "vgg_blocks.yaml"), backend="reference"))
    proto = _exported(model, tmp_path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    np.testing.assert_array_equal(inits["stage1/conv1.W"], model.params["stage1/conv1.W"])
    np.testing.assert_array_equal(inits["stage1/bn1.running_var"],
                                  model.state["stage1/bn1"]["running_var"])
    node = {n.name: n for n in proto.graph.node}
    assert node["stage1/bn1"].op_type == "BatchNormalization"
    assert list(node["stage1/bn1"].input)[1:] == [
        "stage1/bn1.gamma", "stage1/bn1.beta", "stage1/bn1.running_mean",
        "stage1/bn1.running_var"]
    assert node["stage1/bn1:relu"].output == ["stage1/bn1"]   # the layer's value, activated
    assert node["logits"].op_type == "Gemm" and node["logits"].output == ["logits"]


# ------------------------------------------------------------------ dtypes and opsets

def test_float64_where_onnxruntime_runs_it_else_one_clear_error(tmp_path):
    model = _randomise(nngraph.compile(str(SPECS / "iris_mlp.json"), backend="reference",
                                       dtype="float64"))
    proto = _exported(model, tmp_path)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert onnx.numpy_helper.to_array(proto.graph.initializer[0]).dtype == np.float64
    _assert_same_predictions(model, proto)
    lenet = nngraph.compile(str(SPECS / "lenet5.yaml"), backend="reference", dtype="float64")
    with pytest.raises(ExportError, match=r"in float64: ONNX Runtime runs Conv \(layer 'c1', "
                                          r"conv2d\) in float32 only.*dtype='float32'"):
        lenet.export_onnx(str(tmp_path / "lenet.onnx"))
    assert not os.path.exists(tmp_path / "lenet.onnx")
    proto = _exported(lenet, tmp_path, dtype="float32")       # rounded to float32
    session = _session(proto)
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    got = session.run(None, {"image": x.astype(np.float32)})[0]
    want = lenet.predict(x)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_the_oldest_opset_runs_too_and_bad_opsets_are_refused(tmp_path):
    for spec in ("conv_autoencoder.yaml", "lstm_sequence.yaml", "vgg_blocks.yaml"):
        model = _randomise(nngraph.compile(str(SPECS / spec), backend="reference"))
        proto = _exported(model, tmp_path, opset=13)
        assert proto.opset_import[0].version == 13
        _assert_same_predictions(model, proto, batches=(2,))
    newest = onnx.defs.onnx_opset_version()
    for bad in (12, newest + 1, "18", True, 17.0):
        with pytest.raises(ExportError, match=f"opset must be an integer from 13 to {newest}"):
            to_onnx(model, opset=bad)
    with pytest.raises(ExportError, match="dtype must be float32 or float64"):
        to_onnx(model, dtype="float16")


# ------------------------------------------------------------------ what cannot be exported

def test_an_op_without_an_onnx_form_is_one_clear_error(monkeypatch, tmp_path, capsys):
    from nngraph.onnx import registry
    model = nngraph.compile(str(SPECS / "conv_autoencoder.yaml"), backend="reference")
    monkeypatch.delitem(registry.CONVERTERS, "upsample2d")
    with pytest.raises(ExportError, match=r"^cannot export layer 'upsample2d_1' \(upsample2d\) "
                                          r"to ONNX: nngraph has no ONNX form of the op"):
        model.export_onnx(str(tmp_path / "m.onnx"))
    assert main(["export", str(SPECS / "conv_autoencoder.yaml"),
                 "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot export layer 'upsample2d_1' (upsample2d)")
    assert err.count("\n") == 1 and "Traceback" not in err
    monkeypatch.delitem(registry.ACTIVATIONS, "sigmoid")
    with pytest.raises(ExportError, match=r"layer 'decoded' \(dense\).*activation 'sigmoid'"):
        to_onnx(nngraph.compile(str(SPECS / "autoencoder.yaml"), backend="reference"))
    assert not os.listdir(tmp_path)                 # nothing written, no temporary file


def test_without_onnx_export_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    model = nngraph.compile(str(SPECS / "xor_mlp.yaml"), backend="reference")
    monkeypatch.setitem(sys.modules, "onnx", None)        # `import onnx` raises ImportError
    with pytest.raises(ExportError, match=r"needs the onnx package.*pip install nngraph\[onnx\]"):
        model.export_onnx(str(tmp_path / "m.onnx"))
    assert main(["export", str(SPECS / "xor_mlp.yaml"), "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err == ("error: ONNX export needs the onnx package, which is not installed: "
                   "pip install nngraph[onnx]\n")
    assert not os.listdir(tmp_path)


def test_a_failed_export_leaves_the_file_as_it_was(tmp_path):
    model = nngraph.compile(str(SPECS / "xor_mlp.yaml"), backend="reference")
    path = tmp_path / "m.onnx"
    path.write_bytes(b"before")
    with pytest.raises(ExportError):
        model.export_onnx(str(path), opset=3)
    assert path.read_bytes() == b"before"
    with pytest.raises(ExportError, match="cannot write: directory .* does not exist"):
        model.export_onnx(str(tmp_path / "missing" / "m.onnx"))
    assert model.export_onnx(path) == str(path)             # a PathLike is a path too
    assert os.listdir(tmp_path) == ["m.onnx"]


# ------------------------------------------------------------------ the command line

def test_cli_exports_a_spec_with_fresh_weights(tmp_path, capsys, monkeypatch):
    spec = str(SPECS / "lenet5.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["export", spec, "--seed", "4", "--opset", "17"]) == 0      # NAME.onnx here
    out = capsys.readouterr().out
    assert out.startswith("wrote lenet5.onnx: lenet5 (freshly initialised weights, seed 4), "
                          "ONNX opset 17")
    assert "input  image batch x 1 x 28 x 28 float32" in out
    assert "output logits batch x 10 float32" in out
    proto = onnx.load("lenet5.onnx")
    onnx.checker.check_model(proto, full_check=True)
    _assert_same_predictions(nngraph.compile(spec, backend="reference", seed=4), proto)


def test_cli_exports_a_saved_model_with_its_trained_weights(tmp_path, capsys):
    model = _randomise(nngraph.compile(str(SPECS / "embedding_classifier.yaml"),
                                       backend="reference"), seed=5)
    model.save(str(tmp_path / "emb.nnz"))
    out = str(tmp_path / "emb.onnx")
    assert main(["export", str(tmp_path / "emb.nnz"), "-o", out]) == 0
    assert f"wrote {out}: embedding_classifier (weights of " in capsys.readouterr().out
    _assert_same_predictions(model, onnx.load(out))
    assert main(["export", str(tmp_path / "emb.nnz"), "--seed", "1", "-o", out]) == 1
    assert "--seed initialises a SPEC's weights" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none.nnz")]) == 1
    assert "none.nnz: no such file" in capsys.readouterr().err
