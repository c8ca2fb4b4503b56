"""Restricted Boltzmann machine layer (Bernoulli visible and hidden units).

Its output is the hidden probabilities y = sigmoid(x W + b), so that stacked RBMs feed
probabilities upward (a deep belief net) and backpropagation treats the layer as a dense
sigmoid layer when the stack is fine-tuned. The layer owns the visible bias `vb` as well, which
only its training rule uses: each rbm layer L brings the loss `L_cd`
(contrastive_divergence, reading [L's input, L]) whose gradient is the contrastive-divergence
update of W, b and vb, so a spec of RBMs needs no `losses:` section.

Parameters are initialised as scikit-learn's BernoulliRBM does: W ~ N(0, 0.01), both
biases zero (weight_init and bias_init override them; bias_init sets b and vb).
"""
import math

import numpy as np

from . import _rbm
from .base import Attr, Bool, Fusion, Int, OpDef, ParamSpec, ShapeError


def shape(a, shapes):
    (x,) = shapes
    if len(x) != 1:
        dims = "x".join(map(str, x)) or "a scalar"
        raise ShapeError(f"rbm expects flat visible units (features,), got {dims}"
                         + (f": add {{op: flatten}} before it ({dims} = {math.prod(x)} "
                            "visible units)" if x else ""))
    if not a.use_bias:
        raise ShapeError("an rbm needs its hidden and visible biases; use_bias must be true",
                         attr="use_bias")
    return (a.units,)


def params(a, shapes):
    n, m = shapes[0][0], a.units
    return {"W": ParamSpec((n, m), {"normal": {"mean": 0.0, "std": 0.01}}, "weight", n, m),
            "b": ParamSpec((m,), "zeros", "bias", n, m, regularize=False),
            "vb": ParamSpec((n,), "zeros", "bias", m, n, regularize=False)}


def flops(a, shapes, out):
    return 2 * shapes[0][0] * a.units + 4 * a.units      # the product, bias and sigmoid


def forward(ctx, a, xs, p):
    return _rbm.hidden_probs(xs[0], p["W"], p["b"])


def backward(ctx, a, xs, p, y, gy):
    # dense + sigmoid; the visible bias does not act on the output: its gradient comes
    # from the companion contrastive_divergence loss alone
    gz = gy * y * (1 - y)
    return [gz @ p["W"].T], {"W": xs[0].T @ gz, "b": gz.sum(axis=0),
                             "vb": np.zeros_like(p["vb"])}


OP = OpDef("rbm", "layer", Fusion.OPAQUE, shape,
           attrs=(Attr("units", Int(1), doc="number of hidden units"),
                  Attr("k", Int(1, 1000), 1, "Gibbs steps of contrastive divergence (CD-k)"),
                  Attr("persistent", Bool(), False,
                       "persistent contrastive divergence (PCD, scikit-learn's "
                       "BernoulliRBM): the Gibbs chains go on from one step to the next "
                       "instead of starting at the data"),
                  Attr("chains", Int(1, 1 << 20), 32,
                       "number of persistent chains (PCD only); as many as the batch "
                       "matches scikit-learn")),
           params=params, flops=flops, forward=forward, backward=backward,
           takes_activation=False, companion=("contrastive_divergence", "cd"),
           doc="Restricted Boltzmann machine: output p(h|x) = sigmoid(xW + b); trained by "
               "contrastive divergence through the loss LAYER_cd it brings.")
