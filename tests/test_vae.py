"""The variational autoencoder family: reparameterize and gaussian_kl against PyTorch in
float64 (eps taken from the stream nngraph drew), the CPU backend against the reference,
a tiny VAE that learns, Model.predict_from, and `nngraph sample`."""
import struct
import zlib

import numpy as np
import pytest
import torch

import nngraph
from nngraph import random_stream
from nngraph.backends.cpu import lower
from nngraph.cli import main
from nngraph.errors import DataError
from nngraph.subnet import layer_values
from op_harness import check_against_torch, check_gradients, forward, make_case
from test_backends import matches_reference

TINY = """
nngraph: 1
name: tiny_vae
description: a 16-8-(2, 2)-8-16 VAE
inputs:
  image: {shape: [16]}
layers:
  - {op: dense, name: hidden, units: 8, activation: tanh}
  - {op: dense, name: mean, in: hidden, units: 2}
  - {op: dense, name: log_var, in: hidden, units: 2}
  - {op: reparameterize, name: z, in: [mean, log_var]%s}
  - {op: dense, name: dec, units: 8, activation: tanh}
  - {op: dense, name: logits, units: 16}
  - {op: sigmoid, name: decoded}
outputs: [decoded]
losses:
  - {op: sigmoid_cross_entropy, name: reconstruction, in: [logits, image]}
  - {op: gaussian_kl, name: kl, in: [mean, log_var]%s}
train: {optimizer: {type: adam, lr: 0.02}, batch_size: 16, epochs: 1}
"""


def tiny(deterministic=False, kl=""):
    return TINY % (", deterministic: true" if deterministic else "", kl)


def digits(n=64, seed=0):
    """Binary 4x4 patterns of two kinds (a bar and a frame) with a few flipped pixels."""
    rng = np.random.default_rng(seed)
    bar, frame = np.zeros((4, 4)), np.ones((4, 4))
    bar[:, 1:3], frame[1:3, 1:3] = 1, 0
    x = np.where(rng.random(n)[:, None] < 0.5, bar.ravel(), frame.ravel())
    flip = rng.random(x.shape) < 0.05
    return {"image": np.abs(x - flip).astype(np.float32)}


def eps_of(seed, shape):
    """The eps op_harness's context (rng default_rng(seed)) gives the op."""
    return random_stream.normal(random_stream.key([seed]), random_stream.counters(shape))


# ------------------------------------------------------------------ rules vs PyTorch

@pytest.mark.parametrize("shape", [(5,), (2, 3)])
def test_reparameterize_matches_torch(shape):
    eps = torch.tensor(eps_of(1, (3,) + shape))
    check_against_torch("reparameterize", {}, [shape, shape],
                        lambda xs, p, a: xs[0] + torch.exp(xs[1] / 2) * eps,
                        rtol=1e-10, atol=1e-12)
    check_gradients("reparameterize", {}, [shape, shape])


def test_reparameterize_deterministic_is_the_mean():
    check_against_torch("reparameterize", {"deterministic": True}, [(4,), (4,)],
                        lambda xs, p, a: xs[0] + 0 * xs[1], rtol=1e-12, atol=0)
    op, a, xs, p = make_case("reparameterize", {"deterministic": True}, [(4,), (4,)])
    y, _ = forward(op, a, xs, p, training=True)
    np.testing.assert_array_equal(y, xs[0])


def test_reparameterize_draws_standard_normals_and_samples_in_evaluation():
    op, a, xs, p = make_case("reparameterize", {}, [(1000,), (1000,)], batch=8)
    xs = [np.zeros_like(xs[0]), np.zeros_like(xs[1])]          # z = eps
    z, _ = forward(op, a, xs, p, seed=3)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    again, _ = forward(op, a, xs, p, seed=3)
    other, _ = forward(op, a, xs, p, seed=4)
    np.testing.assert_array_equal(z, again)
    assert not np.allclose(z, other)
    ev1, _ = forward(op, a, xs, p, training=False)
    ev2, _ = forward(op, a, xs, p, training=False)
    np.testing.assert_array_equal(ev1, ev2)
    assert ev1.std() > 0.9                                      # sampled, not the mean


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gaussian_kl_matches_torch(reduction):
    def kl(xs, p, a):
        m, lv = xs
        per_sample = torch.distributions.kl_divergence(
            torch.distributions.Normal(m, torch.exp(lv / 2)),
            torch.distributions.Normal(torch.zeros_like(m), torch.ones_like(m))
        ).reshape(len(m), -1).sum(1)
        return per_sample.mean() if reduction == "mean" else per_sample.sum()
    check_against_torch("gaussian_kl", {"reduction": reduction}, [(2, 3), (2, 3)], kl,
                        rtol=1e-10, atol=1e-12)
    check_gradients("gaussian_kl", {"reduction": reduction}, [(4,), (4,)])


def test_gaussian_kl_is_zero_at_the_prior():
    op, a, xs, p = make_case("gaussian_kl", {}, [(3,), (3,)])
    y, _ = forward(op, a, [np.zeros_like(xs[0]), np.zeros_like(xs[1])], p)
    assert y == 0


def test_mean_and_log_var_of_different_shapes_are_located_errors():
    spec = tiny().replace("name: log_var, in: hidden, units: 2",
                          "name: log_var, in: hidden, units: 3")
    with pytest.raises(nngraph.SpecError) as e:
        nngraph.load(spec)
    text = str(e.value)
    # both readers of [mean, log_var] are reported, each at its own line: z and kl
    for line, op in ((11, "reparameterize"), (18, "gaussian_kl")):
        assert f":{line}:" in text and f"{op} needs [mean, log_var] of the same shape" in text
    assert text.count("mean of shape [2] and log_var of shape [3] differ") == 2, text


def test_both_ops_run_their_numpy_rules_on_the_cpu_on_purpose():
    assert {"reparameterize", "gaussian_kl"} <= set(lower.REFERENCE_ONLY)


# ------------------------------------------------------------------ models

@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_cpu_matches_reference_over_three_steps(dtype, rtol):
    cpu, ref = matches_reference(tiny(kl=", reduction: sum"), dtype, rtol)
    assert cpu.backend == "cpu"


@pytest.fixture(scope="module")
def trained():
    model = nngraph.compile(tiny(), backend="cpu", seed=0)
    data = digits()
    before = model.evaluate(data)
    model.fit(data, epochs=40, batch_size=16, verbose=0)
    return model, before, model.evaluate(data)


def test_a_tiny_vae_learns(trained):
    model, before, after = trained
    assert after["loss"] < 0.6 * before["loss"], (before, after)
    assert after["reconstruction"] < before["reconstruction"]
    assert after["kl"] > 0


def test_predict_samples_reproducibly(trained):
    model, *_ = trained
    x = digits(8, seed=1)
    np.testing.assert_array_equal(model.predict(x), model.predict(x))


def test_predict_from_z_decodes_as_the_network_does(tmp_path):
    model = nngraph.compile(tiny(deterministic=True), backend="reference", seed=2)
    x = digits(6)
    codes = layer_values(model, "mean", x)
    np.testing.assert_allclose(model.predict_from("z", codes), model.predict(x), rtol=1e-6)
    assert model.predict_from("z", codes[:1]).shape == (1, 16)


def test_predict_from_refuses_what_is_not_a_network_of_its_own(trained):
    model, *_ = trained
    with pytest.raises(DataError, match="did you mean 'z'"):
        model.predict_from("zz", np.zeros((1, 2)))
    with pytest.raises(DataError, match="also reads 'log_var'"):
        model.predict_from("mean", np.zeros((1, 2)))
    with pytest.raises(DataError, match="no output"):
        model.predict_from("decoded", np.zeros((1, 16)))
    with pytest.raises(DataError, match="values per sample|shape"):
        model.predict_from("z", np.zeros((1, 5)))


# ------------------------------------------------------------------ nngraph sample

def read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    raw = zlib.decompress(idat)
    assert len(raw) == height * (width * {0: 1, 2: 3, 6: 4}[color] + 1)
    return width, height, depth, color


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vae") / "tiny.nnz")
    trained[0].save(path)
    return path


def test_sample_writes_a_grid_png(saved, tmp_path, capsys):
    out = str(tmp_path / "grid.png")
    assert main(["sample", saved, "--from", "z", "-n", "10", "-o", out, "--seed", "3"]) == 0
    # 10 images of 4x4 in 4 columns and 3 rows, a pixel of border around each
    assert read_png(out) == (4 * 5 + 1, 3 * 5 + 1, 8, 0)
    assert "10 samples" in capsys.readouterr().out
    again = str(tmp_path / "again.png")
    assert main(["sample", saved, "-n", "10", "-o", again, "--seed", "3"]) == 0   # z found
    assert open(out, "rb").read() == open(again, "rb").read()


def test_sample_errors(saved, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["sample", saved, "--from", "zz", "-o", out]) == 1
    assert "'zz' is not a layer of 'tiny_vae' (did you mean 'z'?)" in capsys.readouterr().err
    assert main(["sample", saved, "-n", "0", "-o", out]) == 1
    assert main(["sample", saved, "--latent", "-o", out]) == 1     # no dataset in the spec
    assert "--dataset" in capsys.readouterr().err


def test_latent_scatter_of_a_2d_code(saved, tmp_path):
    pytest.importorskip("matplotlib")
    out = str(tmp_path / "scatter.png")
    assert main(["sample", saved, "--latent", "--dataset", "digits", "--limit", "50",
                 "-o", out]) == 1                       # digits have 64 pixels, not 16
    spec = tmp_path / "vae.yaml"
    spec.write_text(tiny().replace("[16]", "[64]").replace("units: 16", "units: 64"))
    model = nngraph.compile(str(spec), backend="reference")
    model.save(str(tmp_path / "d.nnz"))
    assert main(["sample", str(tmp_path / "d.nnz"), "--latent", "--dataset", "digits",
                 "--limit", "50", "-o", out]) == 0
    assert read_png(out)[:2] == (600, 500)
