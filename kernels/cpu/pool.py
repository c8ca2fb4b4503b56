"""Pooling and resampling kernels over NCHW arrays: max, average, global average, nearest
upsampling. A 1-D pool is a 2-D pool over a height of 1: the caller reshapes (N, C, L) to
(N, C, 1, L) and passes kh = sh = 1, pt = pb = 0.

Geometry as in conv.py: window kh x kw, strides sh, sw, padding pt, pb, pl, pr; the output
size must be (H + pt + pb - kh) // sh + 1 (checked). Max pooling treats padding as -inf and
records, for every output, the flat index r*W + s of its arg-max inside the input plane
(int32 or int64 buffer of the output's shape; -1 where the arg-max is a padding cell, which
gets no gradient, as in the reference). Ties go to the first cell in row-major window order,
like numpy's argmax; a NaN wins, as numpy's argmax makes it.

Average pooling counts padding cells as zeros and always divides by kh*kw (the reference's
count_include_pad semantics).

Backward kernels overwrite gx, whatever it held.

Serial: pooling moves little data per sample, and a prange over the batch cost more in
thread start-up than it saved (the executor splits whole batches across cores instead).
"""
import numpy as np

from ._jit import kernel
from ._views import copy_run, flat, rows
from .conv import _span, check_geometry


@kernel
def maxpool2d_forward(x, y, arg, kh, kw, sh, sw, pt, pb, pl, pr):
    """y (N, C, Ho, Wo) = max over each window of x (N, C, H, W); arg gets the arg-max."""
    n_batch, channels, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    check_geometry(h, w, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1)
    if arg.shape != y.shape or y.shape[0] != n_batch or y.shape[1] != channels:
        raise ValueError("maxpool2d_forward: y and arg must have the output's shape")
    neg_inf = x.dtype.type(-np.inf)
    for n in range(n_batch):
        for c in range(channels):
            plane, out, where = x[n, c], y[n, c], arg[n, c]
            for i in range(ho):
                r0 = i * sh - pt
                for j in range(wo):
                    s0 = j * sw - pl
                    best = neg_inf
                    at = -1
                    first = True
                    for u in range(kh):
                        r = r0 + u
                        for v in range(kw):
                            s = s0 + v
                            inside = 0 <= r < h and 0 <= s < w
                            val = plane[r, s] if inside else neg_inf
                            # numpy's argmax: the first maximum wins, a NaN beats everything
                            if first or (best == best and (val > best or val != val)):
                                best = val
                                at = r * w + s if inside else -1
                                first = False
                    out[i, j] = best
                    where[i, j] = at


@kernel
def maxpool2d_backward(gy, arg, gx):
    """gx = 0, then gx[n, c].flat[arg] += gy: each output's gradient goes to its arg-max.
    Flat loops over planes, not `gx[...] = 0` and (n, c, i, j) loops: fewer index
    computations per element, and less code for numba to compile."""
    gxf, gyf, argf = flat(gx), flat(gy), flat(arg)
    plane, outs = gx.shape[2] * gx.shape[3], gy.shape[2] * gy.shape[3]
    for i in range(gxf.size):
        gxf[i] = 0
    for pc in range(gy.shape[0] * gy.shape[1]):           # planes (n, c)
        dst = gxf[pc * plane:(pc + 1) * plane]
        g, where = gyf[pc * outs:(pc + 1) * outs], argf[pc * outs:(pc + 1) * outs]
        for q in range(outs):
            if where[q] >= 0:
                dst[where[q]] += g[q]


@kernel
def avgpool2d_forward(x, y, kh, kw, sh, sw, pt, pb, pl, pr):
    """y = sum over each window of x / (kh*kw); padding cells count as zeros. Row by row of
    y, each window cell (r, v) adds its run of x along the row: the window's short loops
    stay outside and the long one inside, with its ends clipped once (_span), not per
    output."""
    n_batch, channels, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    check_geometry(h, w, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1)
    if y.shape[0] != n_batch or y.shape[1] != channels:
        raise ValueError("avgpool2d_forward: y does not fit x")
    scale = x.dtype.type(1.0 / (kh * kw))
    xf, yf = flat(x), flat(y)
    for p in range(n_batch * channels):
        for i in range(ho):
            out = (p * ho + i) * wo
            for j in range(wo):
                yf[out + j] = 0
            r0 = i * sh - pt
            for r in range(max(r0, 0), min(r0 + kh, h)):
                row = (p * h + r) * w
                for v in range(kw):
                    j0, j1 = _span(wo, sw, v - pl, w)
                    at = row + j0 * sw + v - pl
                    for j in range(j0, j1):
                        yf[out + j] += xf[at]
                        at += sw
            for j in range(wo):
                yf[out + j] *= scale


@kernel
def avgpool2d_backward(gy, gx, kh, kw, sh, sw, pt, pb, pl, pr):
    """gx[r, s] = sum of gy / (kh*kw) over every window containing (r, s)."""
    n_batch, channels, ho, wo = gy.shape
    h, w = gx.shape[2], gx.shape[3]
    check_geometry(h, w, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1)
    scale = gy.dtype.type(1.0 / (kh * kw))
    gx[...] = 0
    for n in range(n_batch):
        for c in range(channels):
            plane, g = gx[n, c], gy[n, c]
            for i in range(ho):
                r0 = i * sh - pt
                for j in range(wo):
                    s0 = j * sw - pl
                    share = g[i, j] * scale
                    for r in range(max(r0, 0), min(r0 + kh, h)):
                        for s in range(max(s0, 0), min(s0 + kw, w)):
                            plane[r, s] += share


@kernel
def global_avgpool2d_forward(x, y):
    """y (N, C) = mean of x (N, C, H, W) over H and W."""
    area = x.shape[2] * x.shape[3]
    if y.shape[0] != x.shape[0] or y.shape[1] != x.shape[1]:
        raise ValueError("global_avgpool2d_forward: y must be (N, C)")
    planes, yf = rows(flat(x), area), flat(y)
    scale = x.dtype.type(1.0 / area)
    for p in range(yf.size):
        total = x.dtype.type(0)
        for q in range(area):
            total += planes[p, q]
        yf[p] = total * scale


@kernel
def global_avgpool2d_backward(gy, gx):
    """gx[n, c, :, :] = gy[n, c] / (H*W)."""
    area = gx.shape[2] * gx.shape[3]
    if gy.shape[0] != gx.shape[0] or gy.shape[1] != gx.shape[1]:
        raise ValueError("global_avgpool2d_backward: gy must be (N, C)")
    planes, gyf = rows(flat(gx), area), flat(gy)
    scale = gx.dtype.type(1.0 / area)
    for p in range(gyf.size):
        share = gyf[p] * scale
        for q in range(area):
            planes[p, q] = share


@kernel
def upsample2d_forward(x, y, sh, sw):
    """y[n, c, i, j] = x[n, c, i // sh, j // sw]: nearest-neighbour upsampling. Each input
    row is widened once into its first output row, which the other sh - 1 rows copy: no
    division per output value."""
    n_batch, channels, h, w = x.shape
    if y.shape[0] != n_batch or y.shape[1] != channels or y.shape[2] != h * sh \
            or y.shape[3] != w * sw:
        raise ValueError("upsample2d_forward: y must be (N, C, H*sh, W*sw)")
    wy = w * sw
    xf, yf = flat(x), flat(y)
    for r in range(n_batch * channels * h):          # input rows, plane after plane
        first = r * sh * wy
        for j in range(w):
            value = xf[r * w + j]
            for dj in range(sw):
                yf[first + j * sw + dj] = value
        for di in range(1, sh):
            copy_run(yf, first + di * wy, yf, first, wy)


@kernel
def upsample2d_backward(gy, gx, sh, sw):
    """gx[n, c, r, s] = sum of gy over the sh x sw block that copied x[n, c, r, s]: for each
    input row, one pass over gx's row per cell (di, dj) of the block, no division per
    value of gy."""
    n_batch, channels, h, w = gx.shape
    if gy.shape[0] != n_batch or gy.shape[1] != channels or gy.shape[2] != h * sh \
            or gy.shape[3] != w * sw:
        raise ValueError("upsample2d_backward: gy must be (N, C, H*sh, W*sw)")
    wy = w * sw
    gxf, gyf = flat(gx), flat(gy)
    for r in range(n_batch * channels * h):
        dst, first = r * w, r * sh * wy
        for j in range(w):
            gxf[dst + j] = gyf[first + j * sw]
        for k in range(1, sh * sw):
            src = first + (k // sw) * wy + k % sw
            for j in range(w):
                gxf[dst + j] += gyf[src + j * sw]
