"""nngraph's rbm against scikit-learn's BernoulliRBM on the 8x8 digits, as JSON.

    python tools/compare_rbm.py [--epochs 10] [--seeds 3] [--backend cpu]

Both train the same network the same way: 64 visible, 64 hidden units, learning rate 0.05,
batch 10, persistent contrastive divergence with 10 chains (BernoulliRBM's only rule;
specs/rbm_digits.yaml), the 1,797 digits scaled to [0, 1] in the same order (no shuffling,
as BernoulliRBM does not shuffle), for the same epochs, each from its own seeds. Both are
scored by the same formulas on the same data: the mean pseudo-log-likelihood
(score_samples' formula, averaged over 10 draws of flipped units, the same draws for both)
and the reconstruction error (mean squared difference between v and p(v | p(h | v))).
Prints per seed and the means, and the training time of each (float64, both on one
process; nngraph's first seed includes compiling).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import nngraph
from nngraph.datasets import load_dataset
from nngraph.ops import _rbm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "rbm_digits.yaml")


def scores(x, W, b, vb, draws=10) -> dict:
    """Mean PLL over `draws` sets of flipped units (seeded: the same for every model) and
    the mean reconstruction error."""
    rng = np.random.default_rng(1234)
    pll = np.mean([_rbm.pseudo_log_likelihood(x, W, b, vb,
                                              rng.integers(0, x.shape[1], len(x))).mean()
                   for _ in range(draws)])
    h = _rbm.hidden_probs(x, W, b)
    return {"pseudo_log_likelihood": float(pll),
            "reconstruction_error": float(_rbm.reconstruction_error(x, h, W, vb).mean())}


def train_sklearn(x, epochs, seed) -> tuple[dict, float]:
    from sklearn.neural_network import BernoulliRBM
    rbm = BernoulliRBM(n_components=64, learning_rate=0.05, batch_size=10, n_iter=epochs,
                       random_state=seed)
    start = time.perf_counter()
    rbm.fit(x)
    took = time.perf_counter() - start
    return scores(x, rbm.components_.T, rbm.intercept_hidden_, rbm.intercept_visible_), took


def train_nngraph(x, epochs, seed, backend) -> tuple[dict, float]:
    start = time.perf_counter()
    model = nngraph.compile(SPEC, backend=backend, seed=seed, dtype="float64")
    model.fit({"image": x}, epochs=epochs, batch_size=10, shuffle=False, verbose=0)
    took = time.perf_counter() - start
    p = model.params
    return scores(x, p["rbm1.W"], p["rbm1.b"], p["rbm1.vb"]), took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--backend", default="cpu")
    args = ap.parse_args()
    x, _ = load_dataset("digits")
    x = np.asarray(x, np.float64)
    out = {"data": f"digits {x.shape[0]}x{x.shape[1]} in [0, 1]", "epochs": args.epochs,
           "backend": args.backend, "runs": []}
    for seed in range(args.seeds):
        sk, sk_time = train_sklearn(x, args.epochs, seed)
        nn, nn_time = train_nngraph(x, args.epochs, seed, args.backend)
        out["runs"].append({"seed": seed, "sklearn": {**sk, "seconds": round(sk_time, 3)},
                            "nngraph": {**nn, "seconds": round(nn_time, 3)}})
    for who in ("sklearn", "nngraph"):
        for k in ("pseudo_log_likelihood", "reconstruction_error", "seconds"):
            vals = [r[who][k] for r in out["runs"]]
            out.setdefault("mean", {}).setdefault(who, {})[k] = float(np.mean(vals))
            out.setdefault("spread", {}).setdefault(who, {})[k] = float(np.ptp(vals))
    with np.errstate(all="ignore"):
        x0 = scores(x, np.zeros((64, 64)), np.zeros(64), np.zeros(64))
    out["untrained"] = x0
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
