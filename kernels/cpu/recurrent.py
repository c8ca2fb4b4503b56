"""RNN, LSTM and GRU over a whole sequence, forward and backpropagation through time, with
the parameter layouts and gate orders of nngraph/ops/{rnn,lstm,gru}.py.

    x (N, T, F), W (F, G*H), U (H, G*H), b (G*H,) or size 0, GRU's bu (G*H,) or size 0
    G = 1 (rnn), 4 (lstm: i, f, g, o), 3 (gru: r, z, n, reset after)

The input projection of every step is ONE GEMM, xw = x.reshape(N*T, F) @ W + b, into the
scratch `xw` (N*T, G*H) (row n*T + t). The step loop then does h_{t-1} @ U with np.dot into
a time-major buffer and the gate math in fused loops.

Output y is (N, T, H) with return_sequences, else the last state as (N, 1, H): reshape the
(N, H) output, the kernels tell the two apart by y.shape[1] (T = 1 makes them the same).
gy comes in the same shape as y.

Saved by forward for backward (time-major, so that every step's slice is contiguous):
    hs    (T+1, N, H)   hidden states, hs[0] = 0                      all three
    cs    (T+1, N, H)   cell states, cs[0] = 0                        lstm
    tcs   (T, N, H)     tanh(c_t)                                     lstm
    gates (T, N, G*H)   activated gates (lstm i f g o, gru r z n)     lstm, gru
    un    (T, N, H)     h_{t-1} U_n + bu_n, before r scales it        gru
Backward scratch: d_tm (T, N, G*H) and d_bm (N*T, G*H) hold the gates' pre-activation
gradients in time-major order (for the per-step h-gradient GEMM and gU) and batch-major order
(for gW, gb and gx against the batch-major x); gh, gc, gtmp (N, H). gx may have size 0 (input
needs no gradient: after an embedding), gb/gbu size 0 when there is no bias.

tanh dominates the step loops: float32 uses the vectorisable rational tanh of _math.py
(libm's tanhf does not vectorise), float64 keeps libm.
"""
import numpy as np

from ._jit import kernel
from ._math import tanh
from .blas import gemm


@kernel
def _project(x, w, b, xw):
    """xw = x.reshape(N*T, F) @ w + b, one GEMM for every step."""
    n, steps, f = x.shape
    if xw.shape[0] != n * steps or xw.shape[1] != w.shape[1] or w.shape[0] != f:
        raise ValueError("recurrent forward: xw must be (N*T, G*H) and W (F, G*H)")
    gemm(1.0, x.reshape(n * steps, f), False, w, False, 0.0, xw)
    if b.size:
        for r in range(xw.shape[0]):
            row = xw[r]
            for j in range(row.shape[0]):
                row[j] += b[j]


@kernel
def _check_states(x, u, y, hs):
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    if hs.shape[0] != steps + 1 or hs.shape[1] != n or hs.shape[2] != units \
            or y.shape[0] != n or y.shape[2] != units or (y.shape[1] != steps and y.shape[1] != 1):
        raise ValueError("recurrent: hs must be (T+1, N, H) and y (N, T, H) or (N, 1, H)")


@kernel
def _column_sums(a, out):
    out[...] = 0
    for r in range(a.shape[0]):
        row = a[r]
        for j in range(row.shape[0]):
            out[j] += row[j]


@kernel
def _weight_grads(x, w, hs, d_tm, d_bm, gx, gw, gu, gb):
    """gU = sum_t h_{t-1}^T d_t, gW = x^T d, gb = sum d, gx = d W^T: four passes, three GEMMs."""
    n, steps, f = x.shape
    units = hs.shape[2]
    gemm(1.0, hs[:steps].reshape(steps * n, units), True, d_tm.reshape(steps * n, d_tm.shape[2]), False, 0.0, gu)
    gemm(1.0, x.reshape(n * steps, f), True, d_bm, False, 0.0, gw)
    if gb.size:
        _column_sums(d_bm, gb)
    if gx.size:
        gemm(1.0, d_bm, False, w, True, 0.0, gx.reshape(n * steps, f))


@kernel
def _output(y, hs, t, last):
    """Copy h_{t+1} into y: every step with return_sequences, else only the last one."""
    steps = hs.shape[0] - 1
    if y.shape[1] == steps or last:
        tt = t if y.shape[1] == steps else 0
        h = hs[t + 1]
        for i in range(y.shape[0]):
            src, dst = h[i], y[i, tt]
            for j in range(y.shape[2]):
                dst[j] = src[j]


@kernel
def _state_grad(gy, t, steps):
    """Which slice of gy feeds step t's state: its own step (sequences), or the last one."""
    if gy.shape[1] == steps:
        return t, True
    return 0, t == steps - 1


# ----------------------------------------------------------------------------------- rnn

@kernel
def rnn_forward(x, w, u, b, y, xw, hs):
    """h_t = tanh(x_t W + b + h_{t-1} U)."""
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    _check_states(x, u, y, hs)
    _project(x, w, b, xw)
    hs[0] = 0
    for t in range(steps):
        h = hs[t + 1]
        gemm(1.0, hs[t], False, u, False, 0.0, h)
        for i in range(n):
            xr, hr = xw[i * steps + t], h[i]
            for j in range(units):
                hr[j] = tanh(xr[j] + hr[j])
        _output(y, hs, t, t == steps - 1)


@kernel
def rnn_backward(x, w, u, hs, gy, gx, gw, gu, gb, d_tm, d_bm, gh):
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    one = x.dtype.type(1)
    gh[...] = 0
    for t in range(steps - 1, -1, -1):
        tt, fed = _state_grad(gy, t, steps)
        h, d = hs[t + 1], d_tm[t]
        for i in range(n):
            hr, dr, db, ghr, gyr = h[i], d[i], d_bm[i * steps + t], gh[i], gy[i, tt]
            for j in range(units):
                g = gyr[j] + ghr[j] if fed else ghr[j]
                v = g * (one - hr[j] * hr[j])
                dr[j] = v
                db[j] = v
        if t > 0:
            gemm(1.0, d, False, u, True, 0.0, gh)
    _weight_grads(x, w, hs, d_tm, d_bm, gx, gw, gu, gb)


# ---------------------------------------------------------------------------------- lstm

@kernel
def lstm_forward(x, w, u, b, y, xw, hs, cs, tcs, gates):
    """c_t = f c_{t-1} + i g, h_t = o tanh(c_t); gates i, f, g, o."""
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    _check_states(x, u, y, hs)
    if gates.shape[0] != steps or gates.shape[1] != n or gates.shape[2] != 4 * units:
        raise ValueError("lstm_forward: gates must be (T, N, 4H)")
    _project(x, w, b, xw)
    hs[0] = 0
    cs[0] = 0
    half, one = x.dtype.type(0.5), x.dtype.type(1)
    for t in range(steps):
        z = gates[t]
        gemm(1.0, hs[t], False, u, False, 0.0, z)
        for i in range(n):
            xr, zr = xw[i * steps + t], z[i]
            c_prev, c_new, tc, h = cs[t, i], cs[t + 1, i], tcs[t, i], hs[t + 1, i]
            for j in range(units):
                ig = half * (one + tanh(half * (xr[j] + zr[j])))
                fg = half * (one + tanh(half * (xr[units + j] + zr[units + j])))
                gg = tanh(xr[2 * units + j] + zr[2 * units + j])
                og = half * (one + tanh(half * (xr[3 * units + j] + zr[3 * units + j])))
                zr[j], zr[units + j], zr[2 * units + j], zr[3 * units + j] = ig, fg, gg, og
                c = fg * c_prev[j] + ig * gg
                c_new[j] = c
                tanh_c = tanh(c)
                tc[j] = tanh_c
                h[j] = og * tanh_c
        _output(y, hs, t, t == steps - 1)


@kernel
def lstm_backward(x, w, u, hs, cs, tcs, gates, gy, gx, gw, gu, gb, d_tm, d_bm, gh, gc):
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    one = x.dtype.type(1)
    gh[...] = 0
    gc[...] = 0
    for t in range(steps - 1, -1, -1):
        tt, fed = _state_grad(gy, t, steps)
        d = d_tm[t]
        for i in range(n):
            gr, c_prev, tc = gates[t, i], cs[t, i], tcs[t, i]
            dr, db, ghr, gcr, gyr = d[i], d_bm[i * steps + t], gh[i], gc[i], gy[i, tt]
            for j in range(units):
                ig, fg = gr[j], gr[units + j]
                gg, og = gr[2 * units + j], gr[3 * units + j]
                tanh_c = tc[j]
                dh = gyr[j] + ghr[j] if fed else ghr[j]
                dc = gcr[j] + dh * og * (one - tanh_c * tanh_c)
                d_i = dc * gg * ig * (one - ig)
                d_f = dc * c_prev[j] * fg * (one - fg)
                d_g = dc * ig * (one - gg * gg)
                d_o = dh * tanh_c * og * (one - og)
                dr[j], dr[units + j], dr[2 * units + j], dr[3 * units + j] = d_i, d_f, d_g, d_o
                db[j], db[units + j], db[2 * units + j], db[3 * units + j] = d_i, d_f, d_g, d_o
                gcr[j] = dc * fg
        if t > 0:
            gemm(1.0, d, False, u, True, 0.0, gh)
    _weight_grads(x, w, hs, d_tm, d_bm, gx, gw, gu, gb)


# ----------------------------------------------------------------------------------- gru

@kernel
def gru_forward(x, w, u, b, bu, y, xw, hs, gates, un):
    """r, z = sigmoid(xw + h U + bu), n = tanh(xw_n + r (h U_n + bu_n)),
    h_t = (1 - z) n + z h_{t-1}."""
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    _check_states(x, u, y, hs)
    if gates.shape[0] != steps or gates.shape[1] != n or gates.shape[2] != 3 * units:
        raise ValueError("gru_forward: gates must be (T, N, 3H)")
    _project(x, w, b, xw)
    hs[0] = 0
    half, one = x.dtype.type(0.5), x.dtype.type(1)
    for t in range(steps):
        z = gates[t]
        gemm(1.0, hs[t], False, u, False, 0.0, z)
        if bu.size:
            for i in range(n):
                zr = z[i]
                for j in range(3 * units):
                    zr[j] += bu[j]
        for i in range(n):
            xr, zr, unr = xw[i * steps + t], z[i], un[t, i]
            h_prev, h = hs[t, i], hs[t + 1, i]
            for j in range(units):
                r = half * (one + tanh(half * (xr[j] + zr[j])))
                zg = half * (one + tanh(half * (xr[units + j] + zr[units + j])))
                u_n = zr[2 * units + j]
                ng = tanh(xr[2 * units + j] + r * u_n)
                unr[j] = u_n
                zr[j], zr[units + j], zr[2 * units + j] = r, zg, ng
                h[j] = (one - zg) * ng + zg * h_prev[j]
        _output(y, hs, t, t == steps - 1)


@kernel
def gru_backward(x, w, u, hs, gates, un, gy, gx, gw, gu, gb, gbu, d_tm, d_bm, gh, gtmp):
    """d_tm holds the gradient of h U + bu (r, z, r * dn), d_bm that of x W + b (r, z, dn)."""
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    one = x.dtype.type(1)
    gh[...] = 0
    for t in range(steps - 1, -1, -1):
        tt, fed = _state_grad(gy, t, steps)
        d = d_tm[t]
        for i in range(n):
            gr, unr, h_prev = gates[t, i], un[t, i], hs[t, i]
            dr, db, ghr, gyr = d[i], d_bm[i * steps + t], gh[i], gy[i, tt]
            for j in range(units):
                r, zg, ng = gr[j], gr[units + j], gr[2 * units + j]
                dh = gyr[j] + ghr[j] if fed else ghr[j]
                d_an = dh * (one - zg) * (one - ng * ng)
                d_ar = d_an * unr[j] * r * (one - r)
                d_az = dh * (h_prev[j] - ng) * zg * (one - zg)
                db[j], db[units + j], db[2 * units + j] = d_ar, d_az, d_an
                dr[j], dr[units + j], dr[2 * units + j] = d_ar, d_az, d_an * r
                ghr[j] = dh * zg                  # the direct path h_{t-1} -> h_t
        if t > 0:
            gemm(1.0, d, False, u, True, 0.0, gtmp)
            for i in range(n):
                ghr, gtr = gh[i], gtmp[i]
                for j in range(units):
                    ghr[j] += gtr[j]
    _weight_grads(x, w, hs, d_tm, d_bm, gx, gw, gu, gb)
    if gbu.size:
        _column_sums(d_tm.reshape(steps * n, 3 * units), gbu)
