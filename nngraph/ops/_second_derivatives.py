"""Elementwise activations with their first and second derivatives, for penalties on a
Jacobian (the contractive autoencoder's): the gradient of a Jacobian's norm needs f'' where
ordinary backpropagation needs f'.

    VALUE_AND_DERIVATIVES[name](a, attrs) -> (f(a), f'(a), f''(a))     a: pre-activations

Piecewise linear activations (relu, leaky_relu, ramp, identity) have f'' = 0 between their
kinks, as PyTorch's double backward takes it. At a kink f' is the one-sided value the op's own
backward uses (relu'(0) = 0), so the Jacobian agrees with what backpropagation computes.
`step` is not here on purpose: its backward is straight-through, not its derivative.
"""
import numpy as np

from .sigmoid import sigmoid
from .softplus import softplus


def _sigmoid(a, at):
    s = sigmoid(a)
    d1 = s * (1 - s)
    return s, d1, d1 * (1 - 2 * s)


def _tanh(a, at):
    t = np.tanh(a)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _softplus(a, at):
    s = sigmoid(a)
    return softplus(a), s, s * (1 - s)


def _piecewise_linear(slope_below):
    """x if x > 0 else slope·x: relu (slope 0), leaky_relu (alpha)."""
    def rule(a, at):
        below = slope_below(at)
        d1 = np.where(a > 0, 1.0, below).astype(a.dtype)
        return np.where(a > 0, a, below * a), d1, np.zeros_like(a)
    return rule


def _exponential_below(scale_of, alpha_of):
    """scale·x if x > 0 else scale·alpha·(exp(x) - 1): elu (scale 1), selu (gamma)."""
    def rule(a, at):
        scale, alpha = scale_of(at), alpha_of(at)
        e = scale * alpha * np.exp(np.minimum(a, 0))    # never overflows for large a
        y = np.where(a > 0, scale * a, scale * alpha * np.expm1(np.minimum(a, 0)))
        return y, np.where(a > 0, scale, e), np.where(a > 0, 0.0, e)
    return rule


def _softsign(a, at):
    d = 1 + np.abs(a)
    return a / d, 1 / (d * d), -2 * np.sign(a) / (d * d * d)


def _gaussian(a, at):
    s2 = at["sigma"] * at["sigma"]
    y = np.exp(-(a * a) / s2)
    return y, (-2 / s2) * a * y, (4 * a * a / (s2 * s2) - 2 / s2) * y


def _ramp(a, at):
    inside = ((a > -1) & (a < 1)).astype(a.dtype)
    return np.clip(a, -1, 1), inside, np.zeros_like(a)


def _identity(a, at):
    return a, np.ones_like(a), np.zeros_like(a)


VALUE_AND_DERIVATIVES = {
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "softplus": _softplus,
    "relu": _piecewise_linear(lambda at: 0.0),
    "leaky_relu": _piecewise_linear(lambda at: at["alpha"]),
    "elu": _exponential_below(lambda at: 1.0, lambda at: at["alpha"]),
    "selu": _exponential_below(lambda at: at["gamma"], lambda at: at["alpha"]),
    "softsign": _softsign,
    "gaussian": _gaussian,
    "ramp": _ramp,
    "identity": _identity,
}
"""Activation name -> rule (f, f', f'') of its pre-activation."""
