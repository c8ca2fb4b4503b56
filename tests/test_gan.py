"""GANs end to end: alternating phases update only their own players, the discriminator
shared by its two uses gets the sum of both gradients (checked against PyTorch), the
backends agree over alternating steps, `nngraph train --samples` draws grids, a short ring8
training covers more modes than the untrained generator, and phase mistakes are located
spec errors."""
import copy
import os
import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import nngraph
from nngraph.cli import main
from nngraph.epoch_samples import epoch_samples
from nngraph.errors import DataError, SpecError
from nngraph.gan_metrics import mode_coverage

SPECS = os.path.join(os.path.dirname(__file__), "..", "specs")
GENERATOR = ["g1", "out"]
DISCRIMINATOR = ["D_real/h", "D_real/logit"]


def tiny_gan(first="discriminator", optimizer=None) -> dict:
    """specs/gan.yaml in miniature: 3 noise numbers -> 4 -> a point; the discriminator
    2 -> 5 -> logit, applied to real and generated points. tanh keeps it smooth."""
    phases = [{"name": "discriminator", "losses": ["d_real", "d_fake"], "params": ["D_real"],
               "steps": 1},
              {"name": "generator", "losses": ["g_loss"], "params": ["g1", "out"],
               "steps": 1}]
    if first == "generator":
        phases.reverse()
    return {
        "nngraph": 1, "name": "tiny_gan",
        "inputs": {"x": {"shape": [2]}, "z": {"shape": [3], "sample": "normal"}},
        "blocks": {"disc": {"layers": [
            {"op": "dense", "name": "h", "units": 5, "activation": "tanh"},
            {"op": "dense", "name": "logit", "units": 1}]}},
        "layers": [
            {"op": "dense", "name": "g1", "in": "z", "units": 4, "activation": "tanh"},
            {"op": "dense", "name": "out", "units": 2},
            {"op": "disc", "name": "D_real", "in": "x"},
            {"op": "disc", "name": "D_fake", "in": "out", "shares": "D_real"},
            {"op": "fill", "name": "ones", "in": "D_real", "value": 1},
            {"op": "fill", "name": "zeros", "in": "D_real", "value": 0}],
        "outputs": ["out"],
        "losses": [
            {"op": "sigmoid_cross_entropy", "name": "d_real", "in": ["D_real", "ones"]},
            {"op": "sigmoid_cross_entropy", "name": "d_fake", "in": ["D_fake", "zeros"]},
            {"op": "sigmoid_cross_entropy", "name": "g_loss", "in": ["D_fake", "ones"]}],
        "train": {"optimizer": optimizer or {"type": "adam", "lr": 0.01, "beta1": 0.5},
                  "batch_size": 4, "epochs": 1, "phases": phases}}


def _params(model, prefixes) -> dict:
    return {k: np.array(v) for k, v in model.params.items()
            if any(k.startswith(p + ".") for p in prefixes)}


def _points(rng, n, z=True) -> dict:
    data = {"x": rng.normal(size=(n, 2))}
    if z:
        data["z"] = rng.normal(size=(n, 3))
    return data


@pytest.mark.parametrize("first,moves,stays", [("discriminator", DISCRIMINATOR, GENERATOR),
                                               ("generator", GENERATOR, DISCRIMINATOR)])
def test_a_phase_step_updates_its_own_player_only(first, moves, stays):
    model = nngraph.compile(tiny_gan(first), backend="reference", seed=0, dtype="float64")
    before_moves, before_stays = _params(model, moves), _params(model, stays)
    assert len(before_moves) == 4 and len(before_stays) == 4
    model.fit(_points(np.random.default_rng(0), 4), batch_size=4, epochs=1, shuffle=False,
              verbose=0)                                   # one batch: the first phase only
    assert list(model.history) == [f"{first}_loss", "loss"]
    for k, v in _params(model, stays).items():
        np.testing.assert_array_equal(v, before_stays[k], err_msg=k)
    for k, v in _params(model, moves).items():
        assert not np.allclose(v, before_moves[k]), f"{k} did not move"


def _torch_steps(params, x, z, lr):
    """One discriminator step on the first half of x, z, then one generator step on the
    second half, in PyTorch with plain SGD; the parameters after each step."""
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}

    def G(z):
        return torch.tanh(z @ P["g1.W"] + P["g1.b"]) @ P["out.W"] + P["out.b"]

    def D(x):
        h = torch.tanh(x @ P["D_real/h.W"] + P["D_real/h.b"])
        return h @ P["D_real/logit.W"] + P["D_real/logit.b"]
    n = len(x) // 2
    x, z = torch.tensor(x), torch.tensor(z)
    real, fake = D(x[:n]), D(G(z[:n]))
    loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    d_grads = torch.autograd.grad(loss, [P[k] for k in params if k.startswith("D_real")])
    with torch.no_grad():
        for k, g in zip([k for k in params if k.startswith("D_real")], d_grads):
            P[k] -= lr * g
    after_d = {k: v.detach().numpy().copy() for k, v in P.items()}
    fake = D(G(z[n:]))
    loss = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    g_keys = [k for k in params if not k.startswith("D_real")]
    with torch.no_grad():
        for k, g in zip(g_keys, torch.autograd.grad(loss, [P[k] for k in g_keys])):
            P[k] -= lr * g
    return after_d, {k: v.detach().numpy() for k, v in P.items()}


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_shared_discriminator_steps_match_pytorch(backend):
    """SGD makes each update -lr x the gradient, so equal parameters after a D step mean
    the shared discriminator got d_real's and d_fake's gradients added, and after the G
    step that the generator's gradient crossed the frozen discriminator."""
    lr = 0.5
    spec = tiny_gan(optimizer={"type": "sgd", "lr": lr})
    model = nngraph.compile(spec, backend=backend, seed=4, dtype="float64")
    start = {k: np.array(v) for k, v in model.params.items()}
    data = _points(np.random.default_rng(1), 8)            # z given: used instead of drawn
    after_d, after_g = _torch_steps(start, data["x"], data["z"], lr)
    model.fit({k: v[:4] for k, v in data.items()}, batch_size=4, shuffle=False, verbose=0)
    for k, v in model.params.items():
        np.testing.assert_allclose(v, after_d[k], rtol=1e-10, atol=1e-12, err_msg=k)
    assert not np.allclose(after_d["D_real/h.W"], start["D_real/h.W"])
    swapped = nngraph.compile(tiny_gan("generator", {"type": "sgd", "lr": lr}),
                              backend=backend, seed=4, dtype="float64")
    for k, v in swapped.params.items():
        v[...] = after_d[k]
    swapped.fit({k: v[4:] for k, v in data.items()}, batch_size=4, shuffle=False, verbose=0)
    for k, v in swapped.params.items():
        np.testing.assert_allclose(v, after_g[k], rtol=1e-10, atol=1e-12, err_msg=k)
    assert not np.allclose(after_g["g1.W"], start["g1.W"])


def test_backends_agree_over_alternating_steps():
    """Six steps (three rounds) with noise drawn by nngraph: the same codes on both
    backends, so the same losses per phase and the same parameters."""
    data = _points(np.random.default_rng(2), 24, z=False)
    runs = {}
    for backend in ("reference", "cpu"):
        model = nngraph.compile(tiny_gan(), backend=backend, seed=5, dtype="float64")
        history = model.fit(data, batch_size=4, epochs=2, verbose=0)
        runs[backend] = (history, model.params)
    (h_ref, p_ref), (h_cpu, p_cpu) = runs["reference"], runs["cpu"]
    assert set(h_ref) == {"discriminator_loss", "generator_loss", "loss"} == set(h_cpu)
    for k in h_ref:
        np.testing.assert_allclose(h_cpu[k], h_ref[k], rtol=1e-9, err_msg=k)
    for k in p_ref:
        np.testing.assert_allclose(p_cpu[k], p_ref[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_ring8_training_covers_more_modes_than_the_untrained_generator():
    model = nngraph.compile(os.path.join(SPECS, "gan.yaml"), backend="cpu", seed=0)
    before = mode_coverage(model.predict(n=2500))
    model.fit(epochs=10, verbose=0)             # a quarter of the spec's 40 (3,130 steps)
    after = mode_coverage(model.predict(n=2500))
    assert after.covered > before.covered and after.covered >= 2, (before, after)
    assert after.high_quality > before.high_quality + 0.1, (before, after)


def _digits_gan(tmp_path) -> str:
    """A GAN of 8x8 digits small enough for the CLI test: dense generator, dense critic."""
    spec = tiny_gan()
    spec["inputs"] = {"image": {"shape": [64]}, "z": {"shape": [3], "sample": "normal"}}
    spec["layers"][1] = {"op": "dense", "name": "out", "units": 64, "activation": "sigmoid"}
    spec["layers"][2]["in"] = "image"
    spec["train"].update(batch_size=32, epochs=2, data={"dataset": "digits", "limit": 128})
    path = tmp_path / "digits_gan.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _png_size(path) -> tuple:
    blob = open(path, "rb").read()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n" and blob[12:16] == b"IHDR"
    w, h = struct.unpack(">II", blob[16:24])
    start = blob.index(b"IDAT")
    (length,) = struct.unpack(">I", blob[start - 4:start])
    pixels = zlib.decompress(blob[start + 4:start + 4 + length])
    assert len(pixels) == h * (w + 1)                     # 8-bit grey, one filter byte a row
    return w, h


def test_train_samples_writes_a_grid_per_epoch(tmp_path, capsys):
    out = tmp_path / "grids"
    rc = main(["train", _digits_gan(tmp_path), "--samples", str(out), "-q",
               "--out", str(tmp_path / "g.nnz")])
    assert rc == 0, capsys.readouterr()
    assert sorted(os.listdir(out)) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    # 64 samples of 8x8: 8 columns and rows of 8 pixels and a 1-pixel border each
    assert _png_size(out / "epoch_002.png") == (8 * 9 + 1, 8 * 9 + 1)
    assert open(out / "epoch_001.png", "rb").read() != open(out / "epoch_002.png", "rb").read()
    assert "epoch_NNN.png" in capsys.readouterr().out


def test_train_samples_refuses_a_network_that_samples_nothing(tmp_path, capsys):
    rc = main(["train", os.path.join(SPECS, "xor_mlp.yaml"), "--samples", str(tmp_path / "s"),
               "--epochs", "1", "-q", "--out", str(tmp_path / "x.nnz")])
    err = capsys.readouterr().err
    assert rc == 1 and "no sampled inputs" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_samples_callback_refuses_outputs_that_are_not_images():
    model = nngraph.compile(tiny_gan(), backend="reference", seed=0)
    with pytest.raises(DataError, match="output 'out' as images"):
        epoch_samples(model, "unused")


def _spec_error(tmp_path, edit) -> str:
    spec = copy.deepcopy(tiny_gan())
    edit(spec["train"]["phases"])
    path = tmp_path / "bad_gan.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(SpecError) as e:
        nngraph.load(str(path))
    return str(e.value)


def test_a_phase_naming_no_parameters_is_located(tmp_path):
    text = _spec_error(tmp_path, lambda ph: ph[1].update(params=["g1", "gen_*"]))
    assert "bad_gan.yaml:" in text and "error[E021]" in text
    assert "'gen_*' names no layer with parameters" in text


def test_an_unknown_phase_loss_is_located_with_a_suggestion(tmp_path):
    text = _spec_error(tmp_path, lambda ph: ph[0].update(losses=["d_real", "d_fak"]))
    line = next(s for s in text.splitlines() if "d_fak'" in s)
    assert line.startswith(str(tmp_path / "bad_gan.yaml") + ":")
    assert "not a loss of the network" in line and "did you mean 'd_fake'" in line
