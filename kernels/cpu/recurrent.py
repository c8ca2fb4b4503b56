"""RNN, LSTM and GRU over a whole sequence, forward and backpropagation through time, with
the parameter layouts and gate orders of nngraph/ops/{rnn,lstm,gru}.py.

    x (N, T, F), W (F, G*H), U (H, G*H), b (G*H,) or size 0, GRU's bu (G*H,) or size 0
    G = 1 (rnn), 4 (lstm: i, f, g, o), 3 (gru: r, z, n, reset after)

Everything per step is time-major, so that a step's slice is one contiguous (N, ...) block.
Forward copies x into xt (T, N, F) and projects every step with ONE GEMM, xt @ W, straight
into the pre-activation buffer (LSTM gates, RNN hs[1:], GRU xw); per step it adds the biases
and h_{t-1} @ U (a beta = 1 GEMM; none at t = 0, where h = 0) and runs the gate math one
sample (row) at a time. Backward mirrors it: per step the gate gradients, one per sample,
then one GEMM for the gradient of h_{t-1}; after the loop one GEMM each for gU, gW (against
xt) and gx over all steps.

Output y is (N, T, H) with return_sequences, else the last state as (N, 1, H): reshape the
(N, H) output, the kernels tell the two apart by y.shape[1] (T = 1 makes them the same).
gy comes in the same shape as y.

Saved by forward for backward:
    xt    (T, N, F)     x, time-major                                 all three
    hs    (T+1, N, H)   hidden states, hs[0] = 0                      all three
    cs    (T+1, N, H)   cell states, cs[0] = 0                        lstm
    tcs   (T, N, H)     tanh(c_t)                                     lstm
    gates (T, N, G*H)   activated gates (lstm i f g o, gru r z n)     lstm, gru
    un    (T, N, H)     h_{t-1} U_n + bu_n, before r scales it        gru
Scratch: GRU's xw (T, N, 3H), x W + b; backward's d (T, N, G*H), the gradient of the
pre-activations (for GRU of h U + bu only), GRU's dx (T, N, 3H), that of x W + b (its n part
is dn where d has r dn), gh and LSTM's gc (N, H), ut (G*H, H) for U^T, and gxt (T, N, F)
for gx time-major (size 0 when gx is). gx may have size 0 (input needs no gradient: after an
embedding), gb/gbu size 0 when there is no bias. No kernel allocates: all of them run
without numba's reference counting (_jit.py).

Why the loops read as they do:
- Every gate loop runs j from 0 over a slice of one gate (z[2*H:3*H] and the like). An index
  such as z[2 * H + j] keeps numba's negative-index wraparound select in the loop body, and
  LLVM leaves the loop scalar; 2-D indexing z[i, k, j] of an (N, 4, H) view runs at scalar
  speed too. With slices the gate math vectorises, several times faster.
- The gate loops are written inline in the kernels: a jitted helper would be called once per
  sample and step, and those calls add up.
- tanh dominates those loops: float32 uses the vectorisable rational tanh of _math.py (libm's
  tanhf does not vectorise) and sigmoid(v) = (1 + tanh(v / 2)) / 2; float64 keeps libm.
- The h-gradient GEMM multiplies by a contiguous copy of U^T: MKL's d @ U with the
  transpose flag is several times slower than the plain product.
- Time-major xt and d, instead of batch-major copies of x W and of d, spare the backward a
  copy of each.
- GEMMs are over half the time, and MKL's two threads make them sensitive to other
  processes: a core kept busy elsewhere slows h @ U, and the backward's product with U^T far
  more (see _back_through_u).
"""
from ._jit import kernel
from ._math import tanh
from ._views import flat, rows
from .blas import gemm


@kernel
def _check_states(x, u, y, xt, hs):
    """ValueError unless hs, y and xt have the shapes above."""
    n, steps, f = x.shape
    units = u.shape[0]
    if hs.shape[0] != steps + 1 or hs.shape[1] != n or hs.shape[2] != units \
            or y.shape[0] != n or y.shape[2] != units or (y.shape[1] != steps and y.shape[1] != 1):
        raise ValueError("recurrent: hs must be (T+1, N, H) and y (N, T, H) or (N, 1, H)")
    if xt.shape[0] != steps or xt.shape[1] != n or xt.shape[2] != f:
        raise ValueError("recurrent: xt must be (T, N, F)")


@kernel
def _project(x, w, xt, out):
    """xt = x time-major, then out (T, N, G*H) = xt @ w: one GEMM for every step."""
    n, steps, f = x.shape
    for t in range(steps):
        for i in range(n):
            for j in range(f):
                xt[t, i, j] = x[i, t, j]
    gemm(1.0, rows(flat(xt), f), False, w, False, 0.0, rows(flat(out), w.shape[1]))


@kernel
def _add_bias(z, b):
    """z[i] += b for every row of z (N, K); nothing when b has size 0 (no bias)."""
    if b.size:
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                z[i, j] += b[j]


@kernel
def _output(y, hs, t):
    """Copy h_{t+1} into y: every step with return_sequences, else only the last one."""
    steps = hs.shape[0] - 1
    if y.shape[1] == steps or t == steps - 1:
        tt = t if y.shape[1] == steps else 0
        for i in range(y.shape[0]):
            for j in range(y.shape[2]):
                y[i, tt, j] = hs[t + 1, i, j]


@kernel
def _add_state_grad(gh, gy, t, steps):
    """gh += the slice of gy that feeds step t's state (its own step, or the last one)."""
    if gy.shape[1] == steps or t == steps - 1:
        tt = t if gy.shape[1] == steps else 0
        for i in range(gh.shape[0]):
            for j in range(gh.shape[1]):
                gh[i, j] += gy[i, tt, j]


@kernel
def _back_through_u(d, ut, beta, gh):
    """gh = d @ ut + beta gh, the gradient reaching h_{t-1} (ut = U^T, contiguous), as two
    GEMMs over halves of the batch. MKL runs a (32, 512) @ (512, 128) product on both
    threads, and while another process keeps a core busy it slows down by more than an order
    of magnitude; two 16-row products slow down far less and cost about the same on an idle
    machine."""
    half = d.shape[0] // 2
    gemm(1.0, d[:half], False, ut, False, beta, gh[:half])
    gemm(1.0, d[half:], False, ut, False, beta, gh[half:])


@kernel(inline=True)
def _transpose_into(u, ut):
    """ut = U^T, contiguous (see _back_through_u); written row by row."""
    if ut.shape[0] != u.shape[1] or ut.shape[1] != u.shape[0]:
        raise ValueError("recurrent backward: ut must be (G*H, H), U transposed")
    for j in range(ut.shape[0]):
        row = ut[j]
        for i in range(row.shape[0]):
            row[i] = u[i, j]


@kernel
def _column_sums(a, out):
    """out = the sum of the rows of a (R, K); nothing when out has size 0 (no bias)."""
    if out.size:
        out[...] = 0
        for r in range(a.shape[0]):
            for j in range(a.shape[1]):
                out[j] += a[r, j]


@kernel
def _weight_grads(w, xt, hs, d, dx, gx, gw, gu, gb, gxt):
    """gU = sum_t h_{t-1}^T d_t, gW = xt^T dx, gb = sum dx, gx = dx W^T (through gxt, of
    xt's shape): one pass each over all steps."""
    steps, n, f = xt.shape
    g = d.shape[2]
    d2, dx2 = rows(flat(d), g), rows(flat(dx), g)
    gemm(1.0, rows(flat(hs[:steps]), hs.shape[2]), True, d2, False, 0.0, gu)
    gemm(1.0, rows(flat(xt), f), True, dx2, False, 0.0, gw)
    _column_sums(dx2, gb)
    if gx.size:
        if gxt.shape != xt.shape:
            raise ValueError("recurrent backward: gxt must have xt's shape (T, N, F)")
        gemm(1.0, dx2, False, w, True, 0.0, rows(flat(gxt), f))
        for t in range(steps):
            for i in range(n):
                for j in range(f):
                    gx[i, t, j] = gxt[t, i, j]


# ----------------------------------------------------------------------------------- rnn

@kernel
def rnn_forward(x, w, u, b, y, xt, hs):
    """h_t = tanh(x_t W + b + h_{t-1} U)."""
    steps = x.shape[1]
    _check_states(x, u, y, xt, hs)
    hs[0] = 0
    _project(x, w, xt, hs[1:])
    for t in range(steps):
        h = hs[t + 1]
        if t > 0:
            gemm(1.0, hs[t], False, u, False, 1.0, h)
        _add_bias(h, b)
        for i in range(h.shape[0]):
            hr = h[i]
            for j in range(hr.shape[0]):
                hr[j] = tanh(hr[j])
        _output(y, hs, t)


@kernel
def rnn_backward(w, u, xt, hs, gy, gx, gw, gu, gb, d, gh, ut, gxt):
    """d_t = (gy_t + d_{t+1} U^T) (1 - h_t^2)."""
    steps = xt.shape[0]
    one = xt.dtype.type(1)
    _transpose_into(u, ut)
    gh[...] = 0
    for t in range(steps - 1, -1, -1):
        _add_state_grad(gh, gy, t, steps)
        for i in range(gh.shape[0]):
            hr, dr, ghr = hs[t + 1, i], d[t, i], gh[i]
            for j in range(hr.shape[0]):
                dr[j] = ghr[j] * (one - hr[j] * hr[j])
        if t > 0:
            _back_through_u(d[t], ut, 0.0, gh)
    _weight_grads(w, xt, hs, d, d, gx, gw, gu, gb, gxt)


# ---------------------------------------------------------------------------------- lstm

@kernel
def lstm_forward(x, w, u, b, y, xt, hs, cs, tcs, gates):
    """i, f, o = sigmoid(.), g = tanh(.) of x_t W + b + h_{t-1} U (gate order i, f, g, o);
    c_t = f c_{t-1} + i g, h_t = o tanh(c_t)."""
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    _check_states(x, u, y, xt, hs)
    if gates.shape[0] != steps or gates.shape[1] != n or gates.shape[2] != 4 * units:
        raise ValueError("lstm_forward: gates must be (T, N, 4H)")
    _project(x, w, xt, gates)
    half = x.dtype.type(0.5)
    hs[0] = 0
    cs[0] = 0
    for t in range(steps):
        z = gates[t]
        if t > 0:
            gemm(1.0, hs[t], False, u, False, 1.0, z)
        _add_bias(z, b)
        for i in range(n):
            c_prev, c, tanh_c, h = cs[t, i], cs[t + 1, i], tcs[t, i], hs[t + 1, i]
            zi, zf = z[i, :units], z[i, units:2 * units]
            zg, zo = z[i, 2 * units:3 * units], z[i, 3 * units:]
            for j in range(units):
                ig = half * tanh(half * zi[j]) + half
                fg = half * tanh(half * zf[j]) + half
                gg = tanh(zg[j])
                og = half * tanh(half * zo[j]) + half
                zi[j], zf[j], zg[j], zo[j] = ig, fg, gg, og
                cj = fg * c_prev[j] + ig * gg
                c[j] = cj
                tc = tanh(cj)
                tanh_c[j] = tc
                h[j] = og * tc
        _output(y, hs, t)


@kernel
def lstm_backward(w, u, xt, hs, cs, tcs, gates, gy, gx, gw, gu, gb, d, gh, gc, ut, gxt):
    """With dh = gy_t + d_{t+1} U^T and dc carried in gc from step t+1, per sample:
    dc += dh o (1 - tanh_c^2); d = (dc g i (1 - i), dc c_{t-1} f (1 - f), dc i (1 - g^2),
    dh tanh_c o (1 - o)) for i, f, g, o; dc_{t-1} = dc f."""
    steps, n = xt.shape[0], xt.shape[1]
    units = u.shape[0]
    one = xt.dtype.type(1)
    _transpose_into(u, ut)
    gh[...] = 0
    gc[...] = 0
    for t in range(steps - 1, -1, -1):
        _add_state_grad(gh, gy, t, steps)
        for i in range(n):
            c_prev, tanh_c, dh, dc = cs[t, i], tcs[t, i], gh[i], gc[i]
            gi, gf = gates[t, i, :units], gates[t, i, units:2 * units]
            gg, go = gates[t, i, 2 * units:3 * units], gates[t, i, 3 * units:]
            di, df = d[t, i, :units], d[t, i, units:2 * units]
            dg, do = d[t, i, 2 * units:3 * units], d[t, i, 3 * units:]
            for j in range(units):
                ig, fg, cand, og, tc, dhj = gi[j], gf[j], gg[j], go[j], tanh_c[j], dh[j]
                dcj = dc[j] + dhj * og * (one - tc * tc)
                di[j] = dcj * cand * ig * (one - ig)
                df[j] = dcj * c_prev[j] * fg * (one - fg)
                dg[j] = dcj * ig * (one - cand * cand)
                do[j] = dhj * tc * og * (one - og)
                dc[j] = dcj * fg
        if t > 0:
            _back_through_u(d[t], ut, 0.0, gh)
    _weight_grads(w, xt, hs, d, d, gx, gw, gu, gb, gxt)


# ----------------------------------------------------------------------------------- gru

@kernel
def gru_forward(x, w, u, b, bu, y, xw, xt, hs, gates, un):
    """r, z = sigmoid(x W + b + h U + bu), n = tanh(x W_n + b_n + r (h U_n + bu_n)),
    h_t = (1 - z) n + z h_{t-1}; xw holds x W + b, gates h U + bu until the gate math."""
    n, steps = x.shape[0], x.shape[1]
    units = u.shape[0]
    _check_states(x, u, y, xt, hs)
    if gates.shape[0] != steps or gates.shape[1] != n or gates.shape[2] != 3 * units:
        raise ValueError("gru_forward: gates must be (T, N, 3H)")
    _project(x, w, xt, xw)
    half, one = x.dtype.type(0.5), x.dtype.type(1)
    hs[0] = 0
    for t in range(steps):
        z = gates[t]
        if t > 0:
            gemm(1.0, hs[t], False, u, False, 0.0, z)
        else:
            z[...] = 0
        _add_bias(xw[t], b)
        _add_bias(z, bu)
        for i in range(n):
            xr, zrow, unr, h_prev, h = xw[t, i], z[i], un[t, i], hs[t, i], hs[t + 1, i]
            for j in range(2 * units):
                zrow[j] += xr[j]
            zr, zz, zn, xn = zrow[:units], zrow[units:2 * units], zrow[2 * units:], xr[2 * units:]
            for j in range(units):
                r = half * tanh(half * zr[j]) + half
                zg = half * tanh(half * zz[j]) + half
                u_n = zn[j]
                ng = tanh(xn[j] + r * u_n)
                unr[j] = u_n
                zr[j], zz[j], zn[j] = r, zg, ng
                h[j] = (one - zg) * ng + zg * h_prev[j]
        _output(y, hs, t)


@kernel
def gru_backward(w, u, xt, hs, gates, un, gy, gx, gw, gu, gb, gbu, d, dx, gh, ut, gxt):
    """Per step and sample: dx = dL/d(x W + b) (r, z, n), d = dL/d(h U + bu) (r, z, r dn);
    dh_{t-1} = dh_t z + d_t U^T accumulates in gh (the direct path, then a beta = 1 GEMM)."""
    steps, n = xt.shape[0], xt.shape[1]
    units = u.shape[0]
    one = xt.dtype.type(1)
    _transpose_into(u, ut)
    gh[...] = 0
    for t in range(steps - 1, -1, -1):
        _add_state_grad(gh, gy, t, steps)
        for i in range(n):
            unr, h_prev, dh = un[t, i], hs[t, i], gh[i]
            gr, gz, gn = gates[t, i, :units], gates[t, i, units:2 * units], gates[t, i, 2 * units:]
            dr, dz, dn = d[t, i, :units], d[t, i, units:2 * units], d[t, i, 2 * units:]
            xr, xz, xn = dx[t, i, :units], dx[t, i, units:2 * units], dx[t, i, 2 * units:]
            for j in range(units):
                r, zg, ng, dhj = gr[j], gz[j], gn[j], dh[j]
                d_an = dhj * (one - zg) * (one - ng * ng)
                d_ar = d_an * unr[j] * r * (one - r)
                d_az = dhj * (h_prev[j] - ng) * zg * (one - zg)
                xr[j], xz[j], xn[j] = d_ar, d_az, d_an
                dr[j], dz[j], dn[j] = d_ar, d_az, d_an * r
                dh[j] = dhj * zg
        if t > 0:
            _back_through_u(d[t], ut, 1.0, gh)
    _weight_grads(w, xt, hs, d, dx, gx, gw, gu, gb, gxt)
    _column_sums(rows(flat(d), d.shape[2]), gbu)
