"""The formulas of a Bernoulli restricted Boltzmann machine, shared by the `rbm` layer and its
`contrastive_divergence` loss (and the metrics evaluate reports for it).

Visible units v (n_visible,), hidden units h (units,), weights W (n_visible, units), hidden
bias b, visible bias vb. With E(v, h) = -v·vb - h·b - v W h:

    p(h_j = 1 | v) = sigmoid(v W + b)_j        p(v_i = 1 | h) = sigmoid(h W^T + vb)_i
    F(v) = -log sum_h exp(-E(v, h)) = -v·vb - sum_j softplus(v W + b)_j

Arrays are batch first, as in the reference rules; results keep the input's dtype.
"""
from __future__ import annotations

import numpy as np

from .. import random_stream
from .sigmoid import sigmoid


def hidden_probs(v, W, b):
    return sigmoid(v @ W + b)


def visible_probs(h, W, vb):
    return sigmoid(h @ W.T + vb)


def free_energy(v, W, b, vb):
    """F(v) per sample, shape (batch,)."""
    return -(v @ vb) - np.logaddexp(0, v @ W + b).sum(axis=1)


class Bernoulli:
    """Draws 0/1 samples from the node's counter-based stream (random_stream.py): the j-th
    draw of a run counts on from where the one before stopped, so no two draws of a step
    share their numbers."""

    def __init__(self, rng):
        self.key, self.used = random_stream.key_of(rng), 0

    def __call__(self, probs):
        counters = random_stream.counters(probs.shape) + np.uint64(self.used)
        self.used += probs.size
        return (random_stream.uniform(self.key, counters) < probs).astype(probs.dtype)


def gibbs(h, W, b, vb, k: int, draw: Bernoulli):
    """k steps of block Gibbs sampling from hidden samples h: each samples v from p(v|h),
    then h from p(h|v). Returns (v_k, p(h|v_k), h sampled from it), as scikit-learn's
    BernoulliRBM does: the negative statistics use the sampled v_k and the probabilities
    p(h|v_k); the persistent chain keeps the sampled h."""
    for _ in range(k):
        v = draw(visible_probs(h, W, vb))
        hp = hidden_probs(v, W, b)
        h = draw(hp)
    return v, hp, h


def reconstruction_error(v, h, W, vb):
    """Per sample, the mean squared difference between v and its one-step mean-field
    reconstruction p(v | h) from the hidden probabilities h = p(h | v)."""
    diff = v.astype(np.float64) - visible_probs(h.astype(np.float64), W.astype(np.float64),
                                                vb.astype(np.float64))
    return np.square(diff).mean(axis=1)


def pseudo_log_likelihood(v, W, b, vb, flip):
    """Per sample, scikit-learn's BernoulliRBM.score_samples with the flipped visible units
    given: n_visible * log sigmoid(F(v') - F(v)), v' being v with unit flip[i] of sample i
    replaced by 1 - v. Computed in float64."""
    v = v.astype(np.float64)
    W, b, vb = (x.astype(np.float64) for x in (W, b, vb))
    flipped = v.copy()
    rows = np.arange(len(v))
    flipped[rows, flip] = 1 - flipped[rows, flip]
    gap = free_energy(flipped, W, b, vb) - free_energy(v, W, b, vb)
    return -v.shape[1] * np.logaddexp(0, -gap)         # log sigmoid(x) = -softplus(-x)
