"""Softmax cross-entropy on one-hot or probability targets (loss and logits gradient in one
kernel) and plain softmax / log-softmax over the last axis, as
nngraph/ops/{softmax_cross_entropy,softmax,log_softmax}.py. (Class-index labels run a
generated kernel: backends/cpu/lower/softmax_cross_entropy.py.)

Arrays are 2-D (rows, classes): the caller reshapes anything else to (-1, K).

Each row is read once for its maximum m, then once more computing d = x - m and e = exp(d)
a single time per element; e is parked in the output (or gradient) buffer and rescaled in
place, so no exp or shift is ever recomputed (NUMBA_NOTES.md: recomputing can differ by an
ulp). Loss sums are accumulated in float64 and returned as a Python float together with the
number of rows whose arg-max (first maximum, as numpy) is the target's, for accuracy metrics
at no extra cost.

Gradient scaling: gx = weight * (softmax(x) - target) / (N if mean else 1), where `weight`
is the loss's weight times the upstream gradient (1 for a plain training step) and `mean`
selects the reduction; the returned loss is reduced the same way but not weighted.
"""
import numpy as np

from ._jit import kernel


@kernel
def _row_max(row):
    """Maximum of a row and the index of its first occurrence."""
    best, at = row[0], 0
    for k in range(1, row.shape[0]):
        if row[k] > best:
            best, at = row[k], k
    return best, at


@kernel
def softmax_cross_entropy_probs(x, t, gx, mean, weight):
    """One-hot or probability targets t (N, K). Returns (loss, correct), `correct` counting
    rows where argmax x == argmax t. gx (N, K) is skipped if size 0."""
    n_rows, k_count = x.shape
    if t.shape[0] != n_rows or t.shape[1] != k_count:
        raise ValueError("softmax_cross_entropy_probs: targets must have the logits' shape")
    want = gx.size > 0
    dt = x.dtype.type
    scale = dt(weight / n_rows) if mean else dt(weight)
    total = 0.0
    correct = 0
    for i in range(n_rows):
        row, target = x[i], t[i]
        m, at = _row_max(row)
        _, want_at = _row_max(target)
        correct += at == want_at
        s = dt(0)
        t_sum = dt(0)
        t_dot = dt(0)
        for k in range(k_count):
            d = row[k] - m
            e = np.exp(d)
            s += e
            t_sum += target[k]
            t_dot += target[k] * d
            if want:
                gx[i, k] = e
        total += t_sum * np.log(s) - t_dot
        if want:
            g = gx[i]
            r = scale / s
            for k in range(k_count):
                g[k] = g[k] * r - scale * target[k]
    return (total / n_rows if mean else total), correct


@kernel
def softmax_forward(x, y):
    """y = softmax(x) along rows."""
    for i in range(x.shape[0]):
        row, out = x[i], y[i]
        m, _ = _row_max(row)
        s = x.dtype.type(0)
        for k in range(row.shape[0]):
            e = np.exp(row[k] - m)
            out[k] = e
            s += e
        r = x.dtype.type(1) / s
        for k in range(row.shape[0]):
            out[k] *= r


@kernel
def softmax_backward(y, gy, gx):
    """gx = y * (gy - sum(gy * y)) along rows."""
    for i in range(y.shape[0]):
        yr, g, out = y[i], gy[i], gx[i]
        dot = y.dtype.type(0)
        for k in range(yr.shape[0]):
            dot += g[k] * yr[k]
        for k in range(yr.shape[0]):
            out[k] = yr[k] * (g[k] - dot)


@kernel
def log_softmax_forward(x, y):
    """y = x - max - log(sum(exp(x - max))) along rows."""
    for i in range(x.shape[0]):
        row, out = x[i], y[i]
        m, _ = _row_max(row)
        s = x.dtype.type(0)
        for k in range(row.shape[0]):
            d = row[k] - m
            out[k] = d
            s += np.exp(d)
        lse = np.log(s)
        for k in range(row.shape[0]):
            out[k] -= lse


@kernel
def log_softmax_backward(y, gy, gx):
    """gx = gy - exp(y) * sum(gy) along rows."""
    for i in range(y.shape[0]):
        yr, g, out = y[i], gy[i], gx[i]
        total = g.sum()
        for k in range(yr.shape[0]):
            out[k] = g[k] - np.exp(yr[k]) * total
