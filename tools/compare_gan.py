"""Train specs/gan.yaml in nngraph (cpu backend) and the same GAN in PyTorch, then score both
generators on ring8 with nngraph.gan_metrics.mode_coverage and draw their samples.

Both start from the same weights (nngraph's initial parameters, dense W transposed into
torch's Linear layout), read the same points (nngraph's ring8 loader) in the same order
(nngraph's per-epoch permutation), and alternate the same steps: each epoch begins with a
discriminator step and the two phases then take one batch each in turn, as
nngraph/phases.py does. Each phase has its own Adam with the spec's settings. The
generator's noise differs (nngraph draws from its counter-based stream, PyTorch from
torch.randn), so the two runs agree in distribution, not to the bit; several seeds show
the spread.

    python tools/compare_gan.py --seeds 0 1 2 --png docs/images/gan_ring8.png

Prints JSON: per seed and framework the modes covered (of 8), the fraction of samples
within 3 sigma of a mode, and the training time; the untrained generator's scores too.
Needs torch and matplotlib (dev dependencies).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import nngraph
from nngraph.data import load_training_data
from nngraph.gan_metrics import mode_coverage

SPEC = os.path.join(os.path.dirname(__file__), "..", "specs", "gan.yaml")
ACTIVATIONS = {None: lambda x: x, "relu": torch.relu, "tanh": torch.tanh,
               "sigmoid": torch.sigmoid}


def dense_chain(net, layers) -> list:
    """[(layer name, activation)] of the dense layers `layers`, in the graph's order."""
    out = []
    for name in net.order():
        if name in layers:
            act = net.node(name).get("activation")
            if act and act[0] not in ACTIVATIONS:
                raise SystemExit(f"{name}: activation {act[0]} is not in this tool's table")
            out.append((name, act[0] if act else None))
    return out


def torch_players(net, params):
    """Generator and discriminator chains as torch tensors {name: (W (units, in), b)},
    copied from nngraph's parameters (W is (inputs, units) there)."""
    dense = [n for n in net.order() if net.node(n).get("params")]
    gen = dense_chain(net, [n for n in dense if not net.node(n).get("cluster")])
    disc = dense_chain(net, [n for n in dense if n.startswith("D_real/")])
    weights = {}
    for name, _ in gen + disc:
        w = torch.tensor(np.array(params[f"{name}.W"], np.float32).T.copy(), requires_grad=True)
        b = torch.tensor(np.array(params[f"{name}.b"], np.float32), requires_grad=True)
        weights[name] = (w, b)
    return gen, disc, weights


def run_chain(chain, weights, x):
    for name, act in chain:
        w, b = weights[name]
        x = ACTIVATIONS[act](F.linear(x, w, b))
    return x


def train_torch(net, params, points, seed, epochs, batch_size, opt):
    """The phased schedule of nngraph/phases.py in PyTorch; returns (generator, weights)."""
    torch.manual_seed(seed)
    gen, disc, W = torch_players(net, params)
    adam = dict(lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"])
    d_opt = torch.optim.Adam([p for n, _ in disc for p in W[n]], **adam)
    g_opt = torch.optim.Adam([p for n, _ in gen for p in W[n]], **adam)
    z_dim = net.inputs["z"].shape[0]
    x_all = torch.tensor(points)
    n = len(points)
    steps = math.ceil(n / batch_size)
    for epoch in range(epochs):
        order = torch.tensor(np.random.default_rng([seed, epoch]).permutation(n))
        for i in range(steps):
            x = x_all[order[i * batch_size:(i + 1) * batch_size]]
            z = torch.randn(len(x), z_dim)
            if i % 2 == 0:           # discriminator: real -> 1, generated -> 0
                real = run_chain(disc, W, x)
                fake = run_chain(disc, W, run_chain(gen, W, z).detach())
                loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
                d_opt.zero_grad()
                loss.backward()
                d_opt.step()
            else:                    # generator: make the discriminator say 1
                fake = run_chain(disc, W, run_chain(gen, W, z))
                loss = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
                g_opt.zero_grad()
                loss.backward()
                g_opt.step()
    return gen, W


def one_seed(seed, epochs, samples):
    model = nngraph.compile(SPEC, backend="cpu", seed=seed)
    net = model.net
    train, _ = load_training_data(net)
    points = np.ascontiguousarray(train["x"], np.float32)
    epochs = epochs or int(net.train["epochs"])
    batch, opt = int(net.train["batch_size"]), net.train["optimizer"]
    start = {k: np.array(v) for k, v in model.params.items()}
    untrained = model.predict(n=samples)
    t0 = time.perf_counter()
    model.fit(train, epochs=epochs, verbose=0)
    t_ours = time.perf_counter() - t0
    ours = model.predict(n=samples)
    t0 = time.perf_counter()
    gen, W = train_torch(net, start, points, seed, epochs, batch, opt)
    t_torch = time.perf_counter() - t0
    with torch.no_grad():
        theirs = run_chain(gen, W, torch.randn(samples, net.inputs["z"].shape[0])).numpy()

    def score(x, seconds=None):
        c = mode_coverage(x)
        out = {"modes_covered": c.covered, "high_quality": round(c.high_quality, 3)}
        return out if seconds is None else {**out, "seconds": round(seconds, 2)}
    report = {"seed": seed, "epochs": epochs, "untrained": score(untrained),
              "nngraph": score(ours, t_ours), "pytorch": score(theirs, t_torch)}
    return report, points, ours, theirs


def draw(path, runs):
    """A row per seed: the real points in grey under nngraph's and PyTorch's samples."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("the scatter plot needs matplotlib: pip install matplotlib") from None
    fig, axes = plt.subplots(len(runs), 2, figsize=(8, 4 * len(runs)), squeeze=False)
    for row, (report, real, ours, theirs) in zip(axes, runs):
        for ax, who, x in ((row[0], "nngraph", ours), (row[1], "pytorch", theirs)):
            s = report[who]
            ax.scatter(real[:2500, 0], real[:2500, 1], s=2, c="0.7", label="real")
            ax.scatter(x[:, 0], x[:, 1], s=2, c="tab:red" if who == "nngraph" else "tab:blue",
                       label="generated")
            ax.set_title(f"{who}, seed {report['seed']}: {s['modes_covered']}/8 modes, "
                         f"{s['high_quality']:.0%} within 3 sigma", fontsize=9)
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_aspect("equal")
            ax.legend(loc="upper right", fontsize=7, markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the spec's")
    ap.add_argument("--samples", type=int, default=2500, help="generated points scored")
    ap.add_argument("--png", default="gan_ring8.png", help="the scatter plot (default %(default)s)")
    args = ap.parse_args()
    runs = [one_seed(seed, args.epochs, args.samples) for seed in args.seeds]
    draw(args.png, runs)
    reports = [r for r, *_ in runs]
    summary = {who: {"mean_modes_covered": round(float(np.mean(
                         [r[who]["modes_covered"] for r in reports])), 2),
                     "mean_high_quality": round(float(np.mean(
                         [r[who]["high_quality"] for r in reports])), 3)}
               for who in ("untrained", "nngraph", "pytorch")}
    print(json.dumps({"spec": "specs/gan.yaml", "samples": args.samples, "runs": reports,
                      "summary": summary, "png": args.png}, indent=1))


if __name__ == "__main__":
    main()
