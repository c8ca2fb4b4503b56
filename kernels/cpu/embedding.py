"""Embedding lookup (gather) and its gradient (scatter-add), as nngraph/ops/embedding.py.

Indices come flat: the caller reshapes (N,) or (N, T) integer indices to (M,) and the output
(N, dim) or (N, T, dim) to (M, dim). Any integer dtype works (int64 is the usual one).

Bad indices do not crash and do not read out of bounds: embedding_forward returns the
position in `idx` of the first index outside [0, vocab) (or -1 when all are good) and leaves
that row of y zero, so the caller can raise a DataError naming idx[pos] and vocab, as the
reference does. embedding_backward skips bad indices the same way.
"""
from ._jit import kernel


@kernel
def embedding_forward(idx, w, y):
    """y[m] = w[idx[m]]. Returns the first bad position, or -1."""
    vocab, dim = w.shape
    if y.shape[0] != idx.shape[0] or y.shape[1] != dim:
        raise ValueError("embedding_forward: y must be (len(idx), dim)")
    bad = -1
    for m in range(idx.shape[0]):
        k = idx[m]
        out = y[m]
        if k < 0 or k >= vocab:
            if bad < 0:
                bad = m
            for d in range(dim):
                out[d] = 0
            continue
        row = w[k]
        for d in range(dim):
            out[d] = row[d]
    return bad


@kernel
def embedding_backward(idx, gy, gw):
    """gw = 0, then gw[idx[m]] += gy[m] (repeated indices accumulate). Returns the first bad
    position, or -1."""
    vocab, dim = gw.shape
    gw[...] = 0
    bad = -1
    for m in range(idx.shape[0]):
        k = idx[m]
        if k < 0 or k >= vocab:
            if bad < 0:
                bad = m
            continue
        row, g = gw[k], gy[m]
        for d in range(dim):
            row[d] += g[d]
    return bad
