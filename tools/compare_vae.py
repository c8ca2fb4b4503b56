"""Train specs/vae.yaml in nngraph (cpu backend) and the same network in PyTorch, from the
same initial weights (copied from nngraph's model), on the same split, with the same epochs,
batch size and optimizer; print the held-out losses of both (reconstruction, KL, total) as
JSON. The batches' order and the eps of the sampling layer differ (each framework draws its
own), so the numbers agree statistically, not to the bit.

    python tools/compare_vae.py --epochs 5
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import nngraph
from nngraph.data import load_training_data

SPEC = os.path.join(os.path.dirname(__file__), "..", "specs", "vae.yaml")


def torch_losses(P, x, eps=None):
    """(reconstruction, kl) of a batch, each summed over features and averaged over it."""
    h = torch.relu(x @ P["hidden.W"] + P["hidden.b"])
    mean = h @ P["mean.W"] + P["mean.b"]
    log_var = h @ P["log_var.W"] + P["log_var.b"]
    eps = torch.randn_like(mean) if eps is None else eps
    z = mean + torch.exp(log_var / 2) * eps
    d = torch.relu(z @ P["dec_hidden.W"] + P["dec_hidden.b"])
    logits = d @ P["logits.W"] + P["logits.b"]
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = -0.5 * (1 + log_var - mean ** 2 - torch.exp(log_var)).sum() / len(x)
    return rec, kl


def train_torch(params, train, val, epochs, batch, opt_config, seed):
    torch.manual_seed(seed)
    P = {k: torch.tensor(np.array(v, np.float32), requires_grad=True) for k, v in params.items()}
    opt = torch.optim.Adam(P.values(), lr=opt_config["lr"],
                           betas=(opt_config["beta1"], opt_config["beta2"]), eps=opt_config["eps"])
    x = torch.tensor(train)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(batch):
            rec, kl = torch_losses(P, x[idx])
            opt.zero_grad()
            (rec + kl).backward()
            opt.step()
    with torch.no_grad():
        rec, kl = torch_losses(P, torch.tensor(val))
    return {"reconstruction": float(rec), "kl": float(kl), "loss": float(rec + kl)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model = nngraph.compile(SPEC, backend="cpu", seed=args.seed)
    net = model.net
    train, val = load_training_data(net)
    opt, batch = net.train["optimizer"], net.train["batch_size"]
    start = {k: np.array(v) for k, v in model.params.items()}
    t0 = time.perf_counter()
    model.fit(train, epochs=args.epochs, batch_size=batch, verbose=0)
    t_ours = time.perf_counter() - t0
    ours = model.evaluate(val, batch_size=len(val["image"]))
    t0 = time.perf_counter()
    theirs = train_torch(start, train["image"], val["image"], args.epochs, batch, opt,
                         args.seed)
    t_torch = time.perf_counter() - t0
    print(json.dumps({
        "spec": "specs/vae.yaml", "epochs": args.epochs, "batch_size": batch,
        "optimizer": opt, "train_samples": len(train["image"]),
        "held_out_samples": len(val["image"]),
        "nngraph": {k: round(float(ours[k]), 3) for k in ("reconstruction", "kl", "loss")},
        "pytorch": {k: round(v, 3) for k, v in theirs.items()},
        "seconds": {"nngraph": round(t_ours, 2), "pytorch": round(t_torch, 2)}}, indent=1))


if __name__ == "__main__":
    main()
