"""Gated recurrent unit in the PyTorch / Keras "reset_after" form, gates in the order r, z, n:

    [a_r, a_z, a_n] = x_t W + b                   W (F, 3H), b (3H,)   input projection
    [u_r, u_z, u_n] = h_{t-1} U + bu              U (H, 3H), bu (3H,)  recurrent projection
    r = sigmoid(a_r + u_r),  z = sigmoid(a_z + u_z),  n = tanh(a_n + r * u_n)
    h_t = (1 - z) * n + z * h_{t-1}               h_0 = 0

The reset gate scales the recurrent projection after U, which is why the two biases are kept
apart (b_n and bu_n are not interchangeable). Torch's nn.GRU holds W.T, U.T, b and bu.
Input (T, F) per sample; output every h_t, (T, H), with `return_sequences`, else h_T, (H,).
"""
import numpy as np

from . import _recurrent as rec
from .base import Fusion, OpDef


def shape(a, shapes):
    return rec.shape("gru", a, shapes)


def params(a, shapes):
    return rec.params(a, shapes, gates=3, recurrent_bias=True)


def flops(a, shapes, out):
    # per unit: 6 bias adds, 2 gate sums, 3 activations, r * u_n and its add, 3 for the blend
    return rec.flops(a, shapes, gates=3, elementwise=16)


def forward(ctx, a, xs, p):
    x = xs[0]
    n_batch, steps, _ = x.shape
    h = a.units
    xw = rec.project_inputs(x, p)
    hs = rec.hidden_states(x, h)
    gates = np.empty((n_batch, steps, 3 * h), dtype=x.dtype)   # activated r, z, n
    u_n = np.empty((n_batch, steps, h), dtype=x.dtype)         # kept for r's gradient
    for t in range(steps):
        hu = hs[:, t] @ p["U"]
        if "bu" in p:
            hu = hu + p["bu"]
        rz = rec.sigmoid(xw[:, t, :2 * h] + hu[:, :2 * h])
        r, z = rz[:, :h], rz[:, h:]
        n = np.tanh(xw[:, t, 2 * h:] + r * hu[:, 2 * h:])
        gates[:, t, :2 * h], gates[:, t, 2 * h:], u_n[:, t] = rz, n, hu[:, 2 * h:]
        hs[:, t + 1] = (1 - z) * n + z * hs[:, t]
    ctx.saved.update(hs=hs, gates=gates, u_n=u_n)
    return rec.output(a, hs)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    hs, gates, u_n = ctx.saved["hs"], ctx.saved["gates"], ctx.saved["u_n"]
    steps = x.shape[1]
    g_state = rec.state_grads(a, gy, steps)
    d_in = np.empty_like(gates)                  # gradient of x_t W + b
    d_rec = np.empty_like(gates)                 # gradient of h_{t-1} U + bu
    g_h = np.zeros_like(hs[:, 0])                # what h_t receives from step t + 1
    for t in reversed(range(steps)):
        r, z, n = np.split(gates[:, t], 3, axis=1)
        h_prev = hs[:, t]
        dh = g_state[:, t] + g_h
        d_an = dh * (1 - z) * (1 - n * n)
        d_ar = d_an * u_n[:, t] * r * (1 - r)
        d_az = dh * (h_prev - n) * z * (1 - z)
        d_in[:, t] = np.concatenate([d_ar, d_az, d_an], axis=1)
        d_rec[:, t] = np.concatenate([d_ar, d_az, d_an * r], axis=1)
        g_h = dh * z + d_rec[:, t] @ p["U"].T
    gx, gp = rec.projection_grads(x, hs, d_in, d_rec, p)
    return [gx], gp


OP = OpDef("gru", "layer", Fusion.OPAQUE, shape, attrs=rec.ATTRS,
           params=params, flops=flops, forward=forward, backward=backward,
           doc="GRU layer (reset after, as PyTorch): r, z gates, n = tanh(x W_n + b_n + "
               "r (h U_n + bu_n)), h_t = (1 - z) n + z h_{t-1}, h_0 = 0.")
