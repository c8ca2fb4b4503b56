"""Elman recurrent layer with a tanh cell: h_t = tanh(x_t W + h_{t-1} U + b), h_0 = 0.

Input (T, F) per sample; output every h_t, (T, H), with `return_sequences`, else h_T, (H,).
W is (F, H), U is (H, H) (orthogonal at init), b is (H,). Torch's nn.RNN holds W.T and U.T.
"""
import numpy as np

from . import _recurrent as rec
from .base import Fusion, OpDef


def shape(a, shapes):
    return rec.shape("rnn", a, shapes)


def params(a, shapes):
    return rec.params(a, shapes, gates=1)


def flops(a, shapes, out):
    return rec.flops(a, shapes, gates=1, elementwise=3)      # two adds and a tanh per unit


def forward(ctx, a, xs, p):
    x = xs[0]
    xw = rec.project_inputs(x, p)
    hs = rec.hidden_states(x, a.units)
    for t in range(x.shape[1]):
        hs[:, t + 1] = np.tanh(xw[:, t] + hs[:, t] @ p["U"])
    ctx.saved["hs"] = hs
    return rec.output(a, hs)


def backward(ctx, a, xs, p, y, gy):
    x, hs = xs[0], ctx.saved["hs"]
    steps = x.shape[1]
    g_state = rec.state_grads(a, gy, steps)
    d_pre = np.zeros(x.shape[:2] + (a.units,), dtype=hs.dtype)
    g_next = np.zeros_like(hs[:, 0])               # what h_t receives from step t + 1
    for t in reversed(range(steps)):
        h = hs[:, t + 1]
        d_pre[:, t] = (g_state[:, t] + g_next) * (1 - h * h)
        g_next = d_pre[:, t] @ p["U"].T
    gx, gp = rec.projection_grads(x, hs, d_pre, d_pre, p)
    return [gx], gp


OP = OpDef("rnn", "layer", Fusion.OPAQUE, shape, attrs=rec.ATTRS,
           params=params, flops=flops, forward=forward, backward=backward,
           doc="Elman recurrent layer: h_t = tanh(x_t W + h_{t-1} U + b), h_0 = 0.")
