"""Contrastive divergence, the training rule of an `rbm` layer, as a loss.

Inputs [v0, h0]: the rbm layer's input (the data) and its output h0 = p(h | v0). The loss
reads the layer's parameters W, b, vb (it borrows them: spec/borrow.py) and its attributes k,
persistent and chains. Its value is the mean free-energy gap

    F(v0) - F(vk),   F(v) = -v·vb - sum_j softplus(v W + b)_j

where vk is the end of k steps of Gibbs sampling, started from h sampled from h0 (CD-k) or,
with `persistent`, from the persistent chains (PCD; the chains' hidden samples are layer
state, starting at zeros as scikit-learn's do). vk is a sample, held fixed: the gradient of
the gap with respect to W, b and vb is then exactly the CD statistic

    dW = -(v0^T p(h|v0) / n - vk^T p(h|vk) / m),  db, dvb alike

(n samples, m chains), so the spec's optimizer applies the contrastive-divergence update; one
SGD step with rate lr is scikit-learn's BernoulliRBM update with learning_rate lr. The data
get no gradient from it (differentiable_inputs is empty): the rbm's output is not pulled
towards anything.

In evaluation the chain starts at the data whatever `persistent` says, from a fixed stream,
and the persistent chains are left alone. Evaluate also reports, per sample and averaged,
`reconstruction_error` (mean squared difference between v0 and p(v | h0)) and
`pseudo_log_likelihood` (scikit-learn's score_samples: one randomly chosen visible unit of
each sample flipped, n_visible * log sigmoid(F(flipped) - F(v))).
"""
import numpy as np

from . import _rbm
from .base import Fusion, OpDef, ShapeError, StateSpec


def shape(a, shapes):
    v, h = (tuple(s) for s in shapes)
    if len(v) != 1 or len(h) != 1:
        raise ShapeError(f"contrastive_divergence reads flat visible and hidden units, got "
                         f"{list(v)} and {list(h)}")
    return ()


def state(a, shapes):
    if not a.get("_persistent"):
        return {}
    return {"chain": StateSpec((a["_chains"], shapes[1][0]), 0.0)}


def borrows(graph, name):
    """The parameters and CD settings of the rbm layer whose output is input 2."""
    d = graph.nodes[name]
    layer = d["inputs"][-1]
    owner = graph.nodes[layer]
    if owner.get("op") is None or owner["op"].name != "rbm":
        what = owner["op"].name if owner.get("op") is not None else "a network input"
        raise ShapeError(f"contrastive_divergence reads an rbm layer's output as its second "
                         f"input; '{layer}' is {what}")
    if len(d["inputs"]) != 2 or owner["inputs"][:1] != d["inputs"][:1]:
        raise ShapeError(f"contrastive_divergence reads [the rbm's input, the rbm]: "
                         f"[{', '.join(owner['inputs'])}, {layer}], got "
                         f"[{', '.join(d['inputs'])}]")
    a = owner["attrs"]
    return ({p: f"{layer}.{p}" for p in ("W", "b", "vb")},
            {"_k": a["k"], "_persistent": a["persistent"], "_chains": a["chains"]})


def _start(ctx, a, h0, draw):
    """Hidden samples the Gibbs chain starts from: the persistent chains in training with
    PCD, else samples of p(h | v0)."""
    if a.get("_persistent") and ctx.training:
        chain = ctx.state.get("chain")
        if chain is None or chain.shape != (a["_chains"], h0.shape[1]):
            chain = ctx.state["chain"] = np.zeros((a["_chains"], h0.shape[1]), h0.dtype)
        return chain, chain
    return draw(h0), None


def forward(ctx, a, xs, p):
    v0, h0 = xs
    W, b, vb = p["W"], p["b"], p["vb"]
    draw = _rbm.Bernoulli(ctx.rng)
    h, chain = _start(ctx, a, h0, draw)
    vk, hk, h = _rbm.gibbs(h, W, b, vb, a.get("_k", 1), draw)
    if chain is not None:
        chain[...] = h
    ctx.saved.update(vk=vk, hk=hk)
    gap = _rbm.free_energy(v0, W, b, vb).mean() - _rbm.free_energy(vk, W, b, vb).mean()
    scale = len(v0) if a.reduction == "sum" else 1
    return np.asarray(gap * scale, dtype=v0.dtype)


def backward(ctx, a, xs, p, y, gy):
    v0, h0 = xs
    vk, hk = ctx.saved["vk"], ctx.saved["hk"]
    n, m = len(v0), len(vk)
    scale = gy * (n if a.reduction == "sum" else 1)
    s0, sk = v0.dtype.type(scale / n), v0.dtype.type(scale / m)
    # dF(v)/dW = -v^T p(h|v), dF/db = -p(h|v), dF/dvb = -v
    gp = {"W": sk * (vk.T @ hk) - s0 * (v0.T @ h0),
          "b": sk * hk.sum(axis=0) - s0 * h0.sum(axis=0),
          "vb": sk * vk.sum(axis=0) - s0 * v0.sum(axis=0)}
    return [None, None], gp


def flops(a, shapes, out):
    n, m = shapes[0][0], shapes[1][0]
    k = a.get("_k", 1)
    return 2 * n * m * (2 * k + 3)        # 2 products per Gibbs step, free energies, statistics


def _reconstruction(a, xs, p, rng):
    return _rbm.reconstruction_error(xs[0], xs[1], p["W"], p["vb"])


def _pseudo_likelihood(a, xs, p, rng):
    v = xs[0]
    return _rbm.pseudo_log_likelihood(v, p["W"], p["b"], p["vb"],
                                      rng.integers(0, v.shape[1], len(v)))


OP = OpDef("contrastive_divergence", "loss", Fusion.OPAQUE, shape, inputs=(2, 2),
           state=state, flops=flops, forward=forward, backward=backward,
           differentiable_inputs=(), borrows=borrows,
           measures=(("reconstruction_error", _reconstruction),
                     ("pseudo_log_likelihood", _pseudo_likelihood)),
           doc="Contrastive divergence of an rbm layer (in: [its input, the rbm]): the mean "
               "free-energy gap F(v0) - F(vk), vk from k Gibbs steps; its gradient is the "
               "CD update. Every rbm layer brings one, named LAYER_cd.")
