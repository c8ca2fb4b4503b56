"""Shared pieces of the recurrent layers (rnn, lstm, gru).

Each layer reads a sequence (T, F) per sample and keeps a hidden state h of `units` = H
values, zero at the first step. Its gates are computed from two projections that share one
layout: the input projection x W (+ b) of shape (N, T, G*H) for G gates, done for every step
with one matmul before the loop, and the recurrent projection h U, done step by step. The
backward pass (backpropagation through time) collects the gradient of each projection at
every step and then forms the weight gradients with one matmul each.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Attr, Bool, Int, ParamSpec, ShapeError

ATTRS = (Attr("units", Int(1), doc="size H of the hidden state"),
         Attr("return_sequences", Bool(), False,
              "true: output every step's state (T, H); false: only the last one (H,)"))


def shape(name, a, shapes):
    (x,) = shapes
    if len(x) != 2:
        dims = "x".join(map(str, x)) or "a scalar"
        raise ShapeError(f"{name} expects (steps, features), got {dims}{_hint(x)}")
    return (x[0], a.units) if a.return_sequences else (a.units,)


def _hint(x) -> str:
    if len(x) == 1:
        return (f": to read {x[0]} steps of one feature each, add "
                f"{{op: reshape, shape: [{x[0]}, 1]}} before it")
    if len(x) > 2:
        steps = math.prod(x[:-1])
        arith = "x".join(map(str, x[:-1]))
        return (f": to read it as {arith} = {steps} steps of {x[-1]} features, add "
                f"{{op: reshape, shape: [{steps}, {x[-1]}]}} before it")
    return ""


def params(a, shapes, gates: int, recurrent_bias: bool = False):
    """W (F, G*H), U (H, G*H), and when use_bias: b (G*H,) [and bu (G*H,) for the GRU]."""
    f, h = shapes[0][-1], a.units
    out = {"W": ParamSpec((f, gates * h), "glorot_uniform", "weight", f, gates * h),
           "U": ParamSpec((h, gates * h), "orthogonal", "weight", h, gates * h)}
    if a.use_bias:
        out["b"] = ParamSpec((gates * h,), "zeros", "bias", f, gates * h, regularize=False)
        if recurrent_bias:
            out["bu"] = ParamSpec((gates * h,), "zeros", "bias", h, gates * h, regularize=False)
    return out


def flops(a, shapes, gates: int, elementwise: int):
    """Two projections (a multiply-add is 2) plus `elementwise` operations per unit, each step."""
    t, f = shapes[0]
    h = a.units
    return t * (2 * (f + h) * gates * h + elementwise * h)


def sigmoid(z):
    # The tanh form cannot overflow (exp(-z) does for z < -88 in float32) and keeps the dtype.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def project_inputs(x, p):
    """x W + b for every step at once: (N, T, F) -> (N, T, G*H)."""
    n, t, f = x.shape
    z = (x.reshape(n * t, f) @ p["W"]).reshape(n, t, -1)
    return z + p["b"] if "b" in p else z


def hidden_states(x, units):
    """(N, T+1, H) zeros; entry 0 is the initial state, entry s+1 the state after step s."""
    return np.zeros((x.shape[0], x.shape[1] + 1, units), dtype=x.dtype)


def output(a, hs):
    return np.ascontiguousarray(hs[:, 1:] if a.return_sequences else hs[:, -1])


def state_grads(a, gy, steps: int):
    """The output's gradient spread over every step's hidden state, (N, T, H)."""
    if a.return_sequences:
        return gy
    g = np.zeros((gy.shape[0], steps, gy.shape[1]), dtype=gy.dtype)
    g[:, -1] = gy
    return g


def projection_grads(x, hs, d_in, d_rec, p):
    """From the gradients of x W + b (d_in) and of h U (+ bu) (d_rec), both (N, T, G*H), to
    the input's gradient and every parameter's, summed over all steps."""
    n, t, f = x.shape
    d_in2, d_rec2 = d_in.reshape(n * t, -1), d_rec.reshape(n * t, -1)
    h_prev = hs[:, :-1].reshape(n * t, -1)
    gp = {"W": x.reshape(n * t, f).T @ d_in2, "U": h_prev.T @ d_rec2}
    if "b" in p:
        gp["b"] = d_in2.sum(axis=0)
    if "bu" in p:
        gp["bu"] = d_rec2.sum(axis=0)
    return (d_in2 @ p["W"].T).reshape(n, t, f), gp
