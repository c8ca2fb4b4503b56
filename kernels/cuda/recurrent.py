"""RNN, GRU and LSTM over a whole sequence on the GPU, forward and backpropagation through
time, with the parameter layouts, gate orders and initial states of nngraph/ops/{rnn,gru,
lstm}.py (h_0 = c_0 = 0).

    x (N, T, F), W (F, G*H), U (H, G*H), b and GRU's bu (G*H,) or None
    G = 1 (rnn), 3 (gru: r, z, n, reset after), 4 (lstm: i, f, g, o)

Forward: ONE GEMM projects every step, x (N*T, F) @ W into xw (N, T, G*H); then per step
one GEMM h_{t-1} @ U into hu (N, G*H) (none at t = 0, where h = 0) and ONE gate kernel, a
thread per (sample, unit): the biases, the gates' activations, the cell update and the
output. Backward, steps in reverse: ONE gate-gradient kernel, then one GEMM carrying the
gradient of h_{t-1} back through U^T (none at t = 0); after the loop, one GEMM each for
gW, gU and gx over all steps, and column sums for the biases (kernels/cuda/reduce.py).

Layouts. The per-step GEMMs read and write contiguous (N, ...) blocks, so what they touch
is time-major: the states hs (T+1, N, H) and the recurrent gradient d_rec (T, N, G*H). What
meets x in a product over all steps is batch-major, as x is: xw and the gradient of the
input projection d_in (N, T, G*H). The gate-gradient kernel writes both d_in and d_rec
(for rnn and lstm the same values; for the GRU, d_rec's n part is r times d_in's), which
spares a transposed copy of x and of gx.

y is (N, T, H) with return_sequences, else the last state viewed as (N, 1, H); gy comes in
y's shape. The kernels place step t at y[:, t - (T - y.shape[1])] when that is >= 0.

Saved by forward for backward (its arena scratch):
    hs    (T+1, N, H)   hidden states, hs[0] = 0 (written at t = 0)   all three
    cs    (T+1, N, H)   cell states, cs[0] = 0                        lstm
    gates (T, N, G*H)   activated gates (gru r z n, lstm i f g o)     gru, lstm
    un    (T, N, H)     h_{t-1} U_n + bu_n, before r scales it        gru
Scratch: xw (N, T, G*H), hu (N, G*H); backward's d_in (N, T, G*H), d_rec (T, N, G*H), gh
(N, H), the gradient reaching h_t from step t + 1, and LSTM's gc (N, H), that of c_t.

Arithmetic follows the reference rules' order ((x W + b) + h U, sigmoid as
0.5 (1 + tanh(z / 2))), with constants of the arrays' type (kernels per dtype), so that
float64 results agree with numpy's to rounding.
"""
from __future__ import annotations

import math

from numba import cuda
from numba.core import config

from .gemm import gemm
from .launch import THREADS, blocks, grid, per_dtype
from .reduce import column_sums


def _launch(kernel, size: int):
    """`kernel` configured for `size` items, which it loops over with the grid's stride: a
    thread each in blocks of a whole number of warps, up to THREADS (a step of a small layer
    is a few hundred threads); under the simulator, launch.grid's one small block."""
    if config.ENABLE_CUDASIM:
        return kernel[grid(size)]
    width = min(THREADS, 32 * blocks(size, 32))
    return kernel[blocks(size, width), width]


def _or_empty(b, like):
    """b, or an empty device array (the kernels test b.shape[0]) when the layer has none."""
    return cuda.device_array(0, like.dtype) if b is None else b


def _project(x, w, xw) -> None:
    """xw (N, T, G*H) = x (N, T, F) @ w for every step at once."""
    n, steps, f = x.shape
    gemm(1.0, x.reshape(n * steps, f), False, w, False, 0.0,
         xw.reshape(n * steps, xw.shape[2]))


def _recur(t: int, hs, u, hu) -> None:
    """hu = h_{t-1} @ U, step t's recurrent product (nothing at t = 0: h_0 = 0)."""
    if t:
        gemm(1.0, hs[t], False, u, False, 0.0, hu)


def _back_through_u(t: int, d_rec, u, gh, beta: float) -> None:
    """gh = d_rec[t] @ U^T (+ beta gh): the gradient reaching h_{t-1} (none needed at t = 0)."""
    if t:
        gemm(1.0, d_rec[t], False, u, True, beta, gh)


def _products(x, w, hs, d_in, d_rec, gx, gw, gu, gb, gbu) -> None:
    """Every step's gradients summed by one product each: gW = x^T d_in, gU = h_{t-1}^T d_rec,
    gx = d_in W^T, and the biases' column sums. A None target is skipped (frozen, absent)."""
    n, steps, f = x.shape
    g, units = d_in.shape[2], hs.shape[2]
    rows_in, rows_rec = d_in.reshape(n * steps, g), d_rec.reshape(steps * n, g)
    if gw is not None:
        gemm(1.0, x.reshape(n * steps, f), True, rows_in, False, 0.0, gw)
    if gu is not None:
        gemm(1.0, hs[:steps].reshape(steps * n, units), True, rows_rec, False, 0.0, gu)
    if gb is not None:
        column_sums(rows_in, gb)
    if gbu is not None:
        column_sums(rows_rec, gbu)
    if gx is not None:
        gemm(1.0, rows_in, False, w, True, 0.0, gx.reshape(n * steps, f))


def _device_helpers(dtype):
    """Device functions shared by the gate kernels of one dtype."""
    half, one = dtype(0.5), dtype(1)

    @cuda.jit(device=True)
    def sigmoid(z):
        return half * (one + math.tanh(half * z))

    @cuda.jit(device=True)
    def pre(t, n, col, xw, b):
        """Step t's input projection x_t W + b at column col."""
        v = xw[n, t, col]
        if b.shape[0] > 0:
            v += b[col]
        return v

    @cuda.jit(device=True)
    def rec(t, n, col, hu):
        """Step t's recurrent product h_{t-1} U at column col (h_0 U = 0: hu unread)."""
        return hu[n, col] if t > 0 else dtype(0)

    @cuda.jit(device=True)
    def put(y, t, steps, n, j, v):
        """Store h_t in the output when y keeps step t (every step, or the last)."""
        k = t - (steps - y.shape[1])
        if k >= 0:
            y[n, k, j] = v

    @cuda.jit(device=True)
    def state_grad(gy, t, steps, n, j, gh):
        """What reaches h_t: the output's gradient at step t (if y keeps it) plus gh, the
        gradient from step t + 1 (none at the last step)."""
        k = t - (steps - gy.shape[1])
        g = gy[n, k, j] if k >= 0 else dtype(0)
        if t < steps - 1:
            g += gh[n, j]
        return g

    @cuda.jit(device=True)
    def store(d_in, d_rec, t, n, col, v):
        """A pre-activation's gradient, in both layouts (see the module's docstring)."""
        d_in[n, t, col] = v
        d_rec[t, n, col] = v

    return sigmoid, pre, rec, put, state_grad, store


def _rnn_kernels(dtype):
    _, pre, rec, put, state_grad, store = _device_helpers(dtype)
    one = dtype(1)

    @cuda.jit
    def rnn_step(t, xw, hu, b, hs, y):
        """h_t = tanh((x_t W + b) + h_{t-1} U), a thread per (sample, unit)."""
        units = hs.shape[2]
        for i in range(cuda.grid(1), hs.shape[1] * units, cuda.gridsize(1)):
            n, j = i // units, i % units
            if t == 0:
                hs[0, n, j] = 0
            h = math.tanh(pre(t, n, j, xw, b) + rec(t, n, j, hu))
            hs[t + 1, n, j] = h
            put(y, t, xw.shape[1], n, j, h)

    @cuda.jit
    def rnn_step_grad(t, gy, hs, gh, d_in, d_rec):
        """d = dh (1 - h_t^2), into d_in[:, t] and d_rec[t]."""
        units = hs.shape[2]
        for i in range(cuda.grid(1), hs.shape[1] * units, cuda.gridsize(1)):
            n, j = i // units, i % units
            h = hs[t + 1, n, j]
            store(d_in, d_rec, t, n, j,
                  state_grad(gy, t, d_rec.shape[0], n, j, gh) * (one - h * h))

    return rnn_step, rnn_step_grad


rnn_kernels = per_dtype(_rnn_kernels)


def rnn_forward(x, W, U, b, y, xw, hu, hs):
    """Elman RNN over the sequence x (N, T, F): y (N, T, H) or (N, 1, H); hs saved."""
    step = rnn_kernels(xw.dtype)[0]
    b = _or_empty(b, xw)
    _project(x, W, xw)
    for t in range(xw.shape[1]):
        _recur(t, hs, U, hu)
        _launch(step, hs.shape[1] * hs.shape[2])(t, xw, hu, b, hs, y)


def rnn_backward(x, W, U, hs, gy, gx, gW, gU, gb, d_in, d_rec, gh):
    """The RNN's gradients from gy (y's shape); gx, gW, gU, gb None where not wanted."""
    step = rnn_kernels(d_in.dtype)[1]
    for t in reversed(range(d_rec.shape[0])):
        _launch(step, hs.shape[1] * hs.shape[2])(t, gy, hs, gh, d_in, d_rec)
        _back_through_u(t, d_rec, U, gh, 0.0)
    _products(x, W, hs, d_in, d_rec, gx, gW, gU, gb, None)


def _gru_kernels(dtype):
    sigmoid, pre, rec, put, state_grad, _ = _device_helpers(dtype)
    one = dtype(1)

    @cuda.jit(device=True)
    def rec_b(t, n, col, hu, bu):
        """h_{t-1} U + bu at column col."""
        v = rec(t, n, col, hu)
        if bu.shape[0] > 0:
            v += bu[col]
        return v

    @cuda.jit
    def gru_step(t, xw, hu, b, bu, hs, gates, un, y):
        """r, z = sigmoid(a + u) of their columns (a = x_t W + b, u = h_{t-1} U + bu),
        n = tanh(a_n + r u_n), h_t = (1 - z) n + z h_{t-1}; a thread per (sample, unit)."""
        units = hs.shape[2]
        for i in range(cuda.grid(1), hs.shape[1] * units, cuda.gridsize(1)):
            n, j = i // units, i % units
            if t == 0:
                hs[0, n, j] = 0
            h_prev = hs[t, n, j] if t > 0 else dtype(0)
            u_n = rec_b(t, n, 2 * units + j, hu, bu)
            r = sigmoid(pre(t, n, j, xw, b) + rec_b(t, n, j, hu, bu))
            z = sigmoid(pre(t, n, units + j, xw, b) + rec_b(t, n, units + j, hu, bu))
            c = math.tanh(pre(t, n, 2 * units + j, xw, b) + r * u_n)
            h = (one - z) * c + z * h_prev
            gates[t, n, j], gates[t, n, units + j], gates[t, n, 2 * units + j] = r, z, c
            un[t, n, j] = u_n
            hs[t + 1, n, j] = h
            put(y, t, xw.shape[1], n, j, h)

    @cuda.jit
    def gru_step_grad(t, gy, hs, gates, un, gh, d_in, d_rec):
        """The gates' gradients of step t (d_rec's n part is r times d_in's); gh becomes
        dh z, to which the host adds d_rec[t] U^T."""
        units = hs.shape[2]
        for i in range(cuda.grid(1), hs.shape[1] * units, cuda.gridsize(1)):
            n, j = i // units, i % units
            r, z, c = gates[t, n, j], gates[t, n, units + j], gates[t, n, 2 * units + j]
            dh = state_grad(gy, t, d_rec.shape[0], n, j, gh)
            d_an = dh * (one - z) * (one - c * c)
            d_ar = d_an * un[t, n, j] * r * (one - r)
            d_az = dh * (hs[t, n, j] - c) * z * (one - z)
            d_in[n, t, j], d_in[n, t, units + j], d_in[n, t, 2 * units + j] = d_ar, d_az, d_an
            d_rec[t, n, j], d_rec[t, n, units + j] = d_ar, d_az
            d_rec[t, n, 2 * units + j] = d_an * r
            gh[n, j] = dh * z

    return gru_step, gru_step_grad


gru_kernels = per_dtype(_gru_kernels)


def gru_forward(x, W, U, b, bu, y, xw, hu, hs, gates, un):
    """GRU (reset after) over the sequence x (N, T, F): y (N, T, H) or (N, 1, H); hs,
    gates and un saved."""
    step = gru_kernels(xw.dtype)[0]
    b, bu = _or_empty(b, xw), _or_empty(bu, xw)
    _project(x, W, xw)
    for t in range(xw.shape[1]):
        _recur(t, hs, U, hu)
        _launch(step, hs.shape[1] * hs.shape[2])(t, xw, hu, b, bu, hs, gates, un, y)


def gru_backward(x, W, U, hs, gates, un, gy, gx, gW, gU, gb, gbu, d_in, d_rec, gh):
    """The GRU's gradients from gy (y's shape); gx, gW, gU, gb, gbu None where not wanted."""
    step = gru_kernels(d_in.dtype)[1]
    for t in reversed(range(d_rec.shape[0])):
        _launch(step, hs.shape[1] * hs.shape[2])(t, gy, hs, gates, un, gh, d_in, d_rec)
        _back_through_u(t, d_rec, U, gh, 1.0)
    _products(x, W, hs, d_in, d_rec, gx, gW, gU, gb, gbu)


def _lstm_kernels(dtype):
    sigmoid, pre, rec, put, state_grad, store = _device_helpers(dtype)
    one = dtype(1)

    @cuda.jit
    def lstm_step(t, xw, hu, b, hs, cs, gates, y):
        """[i, f, g, o] = (x_t W + b) + h_{t-1} U, activated; c_t = f c_{t-1} + i g,
        h_t = o tanh(c_t); a thread per (sample, unit)."""
        units = hs.shape[2]
        for i in range(cuda.grid(1), hs.shape[1] * units, cuda.gridsize(1)):
            n, j = i // units, i % units
            if t == 0:
                hs[0, n, j], cs[0, n, j] = 0, 0
            c_prev = cs[t, n, j] if t > 0 else dtype(0)
            gi = sigmoid(pre(t, n, j, xw, b) + rec(t, n, j, hu))
            gf = sigmoid(pre(t, n, units + j, xw, b) + rec(t, n, units + j, hu))
            gg = math.tanh(pre(t, n, 2 * units + j, xw, b) + rec(t, n, 2 * units + j, hu))
            go = sigmoid(pre(t, n, 3 * units + j, xw, b) + rec(t, n, 3 * units + j, hu))
            c = gf * c_prev + gi * gg
            h = go * math.tanh(c)
            gates[t, n, j], gates[t, n, units + j] = gi, gf
            gates[t, n, 2 * units + j], gates[t, n, 3 * units + j] = gg, go
            cs[t + 1, n, j], hs[t + 1, n, j] = c, h
            put(y, t, xw.shape[1], n, j, h)

    @cuda.jit
    def lstm_step_grad(t, gy, cs, gates, gh, gc, d_in, d_rec):
        """The four gates' gradients of step t; gc becomes the gradient reaching c_{t-1}."""
        units = cs.shape[2]
        for i in range(cuda.grid(1), cs.shape[1] * units, cuda.gridsize(1)):
            n, j = i // units, i % units
            gi, gf = gates[t, n, j], gates[t, n, units + j]
            gg, go = gates[t, n, 2 * units + j], gates[t, n, 3 * units + j]
            tc = math.tanh(cs[t + 1, n, j])
            dh = state_grad(gy, t, d_rec.shape[0], n, j, gh)
            dc = dh * go * (one - tc * tc)
            if t < d_rec.shape[0] - 1:
                dc = gc[n, j] + dc
            store(d_in, d_rec, t, n, j, dc * gg * gi * (one - gi))
            store(d_in, d_rec, t, n, units + j, dc * cs[t, n, j] * gf * (one - gf))
            store(d_in, d_rec, t, n, 2 * units + j, dc * gi * (one - gg * gg))
            store(d_in, d_rec, t, n, 3 * units + j, dh * tc * go * (one - go))
            gc[n, j] = dc * gf

    return lstm_step, lstm_step_grad


lstm_kernels = per_dtype(_lstm_kernels)


def lstm_forward(x, W, U, b, y, xw, hu, hs, cs, gates):
    """LSTM over the sequence x (N, T, F): y (N, T, H) or (N, 1, H); hs, cs, gates saved."""
    step = lstm_kernels(xw.dtype)[0]
    b = _or_empty(b, xw)
    _project(x, W, xw)
    for t in range(xw.shape[1]):
        _recur(t, hs, U, hu)
        _launch(step, hs.shape[1] * hs.shape[2])(t, xw, hu, b, hs, cs, gates, y)


def lstm_backward(x, W, U, hs, cs, gates, gy, gx, gW, gU, gb, d_in, d_rec, gh, gc):
    """The LSTM's gradients from gy (y's shape); gx, gW, gU, gb None where not wanted."""
    step = lstm_kernels(d_in.dtype)[1]
    for t in reversed(range(d_rec.shape[0])):
        _launch(step, cs.shape[1] * cs.shape[2])(t, gy, cs, gates, gh, gc, d_in, d_rec)
        _back_through_u(t, d_rec, U, gh, 0.0)
    _products(x, W, hs, d_in, d_rec, gx, gW, gU, gb, None)
