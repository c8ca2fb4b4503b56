"""Long short-term memory layer, gates in PyTorch's order i, f, g, o:

    [i, f, g, o] = x_t W + h_{t-1} U + b          W (F, 4H), U (H, 4H), b (4H,)
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)                   h_0 = c_0 = 0

Input (T, F) per sample; output every h_t, (T, H), with `return_sequences`, else h_T, (H,).
Torch's nn.LSTM holds W.T and U.T and two biases whose sum is our b. The forget-gate bias
starts like every bias, from `bias_init` (zeros by default); for Keras' unit_forget_bias
(f's bias at 1) give `bias_init` as a literal array of 4H values.
"""
import numpy as np

from . import _recurrent as rec
from .base import Fusion, OpDef


def shape(a, shapes):
    return rec.shape("lstm", a, shapes)


def params(a, shapes):
    return rec.params(a, shapes, gates=4)


def flops(a, shapes, out):
    # per unit: 8 adds for the 4 gates' projections and bias, 4 activations, 3 for the cell
    # update, tanh(c) and the output product
    return rec.flops(a, shapes, gates=4, elementwise=17)


def forward(ctx, a, xs, p):
    x = xs[0]
    n, steps, _ = x.shape
    h = a.units
    xw = rec.project_inputs(x, p)
    hs, cs = rec.hidden_states(x, h), rec.hidden_states(x, h)
    gates = np.empty((n, steps, 4 * h), dtype=x.dtype)     # activated i, f, g, o
    for t in range(steps):
        z = xw[:, t] + hs[:, t] @ p["U"]
        gates[:, t, :2 * h] = rec.sigmoid(z[:, :2 * h])
        gates[:, t, 2 * h:3 * h] = np.tanh(z[:, 2 * h:3 * h])
        gates[:, t, 3 * h:] = rec.sigmoid(z[:, 3 * h:])
        i, f, g, o = np.split(gates[:, t], 4, axis=1)
        cs[:, t + 1] = f * cs[:, t] + i * g
        hs[:, t + 1] = o * np.tanh(cs[:, t + 1])
    ctx.saved.update(hs=hs, cs=cs, gates=gates)
    return rec.output(a, hs)


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    hs, cs, gates = ctx.saved["hs"], ctx.saved["cs"], ctx.saved["gates"]
    steps = x.shape[1]
    g_state = rec.state_grads(a, gy, steps)
    d_pre = np.empty_like(gates)                 # gradient of the gates' pre-activations
    g_h = np.zeros_like(hs[:, 0])                # what h_t receives from step t + 1
    g_c = np.zeros_like(cs[:, 0])                # what c_t receives from step t + 1
    for t in reversed(range(steps)):
        i, f, g, o = np.split(gates[:, t], 4, axis=1)
        tanh_c = np.tanh(cs[:, t + 1])
        dh = g_state[:, t] + g_h
        dc = g_c + dh * o * (1 - tanh_c * tanh_c)
        d_pre[:, t] = np.concatenate([dc * g * i * (1 - i),
                                      dc * cs[:, t] * f * (1 - f),
                                      dc * i * (1 - g * g),
                                      dh * tanh_c * o * (1 - o)], axis=1)
        g_c = dc * f
        g_h = d_pre[:, t] @ p["U"].T
    gx, gp = rec.projection_grads(x, hs, d_pre, d_pre, p)
    return [gx], gp


OP = OpDef("lstm", "layer", Fusion.OPAQUE, shape, attrs=rec.ATTRS,
           params=params, flops=flops, forward=forward, backward=backward,
           doc="LSTM layer, gates i, f, g, o as in PyTorch: c_t = f c_{t-1} + i g, "
               "h_t = o tanh(c_t), h_0 = c_0 = 0.")
