"""The helpers of the convolution kernels (conv.py, conv_wide.py): the window geometry
(check_geometry, _span; pool.py's windows use them too), im2col and its adjoint col2im
between NCHW and the channel-major columns, and the copies of one chunk's product between
its channel-major buffer and NCHW, with bias, relu or a 2x2 max pooling on the way. Layout
and scratch as in conv.py's docstring. All but _max2 are inlined into their callers.

Indices into flat views are cast to np.uint64 where they are sums of products: numba then
drops its negative-index wraparound, whose select keeps LLVM from vectorising the copies.
With unsigned indices LLVM also versions the copy loop on stride == 1 by itself, so one
loop serves every stride (a loop per case made each kernel that calls im2col slower to
compile).
"""
import math

import numpy as np

from ._jit import kernel
from ._views import add_run, copy_run, flat


@kernel(inline=True)
def check_geometry(h, w, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw):
    """Raise ValueError unless (ho, wo) is the output size of the window geometry."""
    eh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ew = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if ho != eh or wo != ew or ho < 1 or wo < 1:
        raise ValueError("window geometry: the output buffer does not have the output size")


@kernel(inline=True)
def _span(count, stride, offset, size):
    """The range [j0, j1) of j in [0, count) with 0 <= j*stride + offset < size."""
    j0 = 0
    if offset < 0:
        j0 = (-offset + stride - 1) // stride
    j1 = count
    last = size - 1 - offset            # j*stride <= last
    if last < 0:
        j1 = 0
    elif last // stride + 1 < count:
        j1 = last // stride + 1
    if j0 > j1:
        j0 = j1
    return j0, j1


@kernel(inline=True)
def _im2col(x, n0, cols, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw):
    """im2col of samples n0 .. n0+g of x (N, C, H, W), g = cols.shape[1] // (Ho*Wo):

        cols[(c, u, v), (n, i, j)] = x[n0 + n, c, i*sh + u*dh - pt, j*sw + v*dw - pl]

    (0 outside x). Flat indices into x and cols, no slice per row of cols: at small batches
    making the slices costs as much as the copies. The loop nest is written again in
    _col2im: a table of the rows that both read took longer to compile than the copy."""
    channels, h, w = x.shape[1], x.shape[2], x.shape[3]
    p = ho * wo
    m = cols.shape[1]
    plane = h * w
    xf, cf = flat(x), flat(cols)
    if pt > 0 or pl > 0 or (ho - 1) * sh + (kh - 1) * dh >= h + pt \
            or (wo - 1) * sw + (kw - 1) * dw >= w + pl:
        for i in range(cf.size):           # padding: cells outside x stay 0
            cf[i] = 0
    for c in range(channels):
        for u in range(kh):
            i0, i1 = _span(ho, sh, u * dh - pt, h)
            for v in range(kw):
                j0, j1 = _span(wo, sw, v * dw - pl, w)
                row = ((c * kh + u) * kw + v) * m + i0 * wo + j0
                first = (i0 * sh + u * dh - pt) * w + j0 * sw + v * dw - pl
                for n in range(m // p if i1 > i0 and j1 > j0 else 0):
                    a = ((n0 + n) * channels + c) * plane + first    # x at the first cell
                    d = row + n * p                                  # cols at the same cell
                    for i in range(i1 - i0):
                        ai, di = a + i * sh * w, d + i * wo
                        if sw == 1:             # a row at once, in vectors of 8 (_views.py)
                            copy_run(cf, di, xf, ai, j1 - j0)
                        else:
                            for j in range(j1 - j0):
                                cf[np.uint64(di + j)] = xf[np.uint64(ai + j * sw)]


@kernel(inline=True)
def _col2im(x, n0, cols, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw):
    """The adjoint of _im2col: x[n0:n0+g] = 0, then every entry of cols is added into the
    entry of x it would have been read from. (Its own kernel, not a flag of _im2col: a
    convolution's forward then compiles only the copy it runs.)"""
    channels, h, w = x.shape[1], x.shape[2], x.shape[3]
    p = ho * wo
    m = cols.shape[1]
    plane = h * w
    xf, cf = flat(x), flat(cols)
    zero = xf[n0 * channels * plane:n0 * channels * plane + (m // p) * channels * plane]
    for i in range(zero.size):
        zero[i] = 0
    for c in range(channels):
        for u in range(kh):
            i0, i1 = _span(ho, sh, u * dh - pt, h)
            for v in range(kw):
                j0, j1 = _span(wo, sw, v * dw - pl, w)
                row = ((c * kh + u) * kw + v) * m + i0 * wo + j0
                first = (i0 * sh + u * dh - pt) * w + j0 * sw + v * dw - pl
                for n in range(m // p if i1 > i0 and j1 > j0 else 0):
                    a = ((n0 + n) * channels + c) * plane + first
                    d = row + n * p
                    for i in range(i1 - i0):
                        ai, di = a + i * sh * w, d + i * wo
                        if sw == 1:             # a row at once (see _im2col)
                            add_run(xf, ai, cf, di, j1 - j0)
                        else:
                            for j in range(j1 - j0):
                                xf[np.uint64(ai + j * sw)] += cf[np.uint64(di + j)]


@kernel(inline=True)
def _to_nchw(a, n0, buf, bias, relu):
    """a[n0 + n, f, q] = buf[f, n*P + q] + bias[f] (bias skipped when empty), through relu
    (v if v > 0 else 0, the generated activation's rule) when relu is set; P = values per
    channel, buf (F, g*P). Returns whether any value before relu was NaN or infinite."""
    f_count = a.shape[1]
    p = a.size // (a.shape[0] * f_count)
    af = flat(a)
    bad = False
    for f in range(f_count):
        row = buf[f]
        extra = bias[f] if bias.size else a.dtype.type(0)
        for n in range(buf.shape[1] // p):
            plane = af[((n0 + n) * f_count + f) * p:((n0 + n) * f_count + f + 1) * p]
            part = row[n * p:(n + 1) * p]
            for q in range(p):
                v = part[q] + extra
                bad |= not (abs(v) < math.inf)
                plane[q] = v if v > 0 or not relu else 0
    return bad


@kernel
def _max2(a, b):
    """The larger of a and b, a NaN winning as in the pooling kernels. | rather than `or`:
    a select, no branch."""
    return a if (a > b) | (a != a) else b


@kernel(inline=True)
def _bias_relu(row, extra, relu):
    """row = row + extra in place, through relu when relu is set, in one loop LLVM
    vectorises; returns whether any value before relu was NaN or infinite."""
    bad = False
    for t in range(row.size):
        v = row[t] + extra
        bad |= not (abs(v) < math.inf)
        row[t] = v if v > 0 or not relu else 0
    return bad


@kernel(inline=True)
def _to_nchw_pool2(a, n0, buf, bias, relu, wp):
    """_to_nchw's values (or conv_wide's) pooled over 2x2 windows at stride 2 on the way:
    a[n0 + n, f, i, j] = max over buf's window at (2i, 2j) of sample n of relu(value +
    bias[f]). wp: the length of buf's rows (the output is even in height and width before
    pooling). Returns whether any value of buf plus the bias was NaN or infinite.

    With relu: bias and relu first, in place over all of buf in one loop LLVM vectorises
    (relu makes a NaN 0, as the pooling kernels see it), then the plain max of each window,
    which is faster than the selects below over every window. Without: relu(max + bias) =
    max(relu(value + bias)) as both are non-decreasing, with selects that let a NaN win as
    in the pooling kernels, and the note from the sum of each window (one test, not four; a
    sum that overflows says so too, which costs only the full scan of predict's input
    check, which then finds nothing)."""
    f_count, hq, wq = a.shape[1], a.shape[2], a.shape[3]
    af, bf, bad = flat(a), flat(buf), False
    for f in range(f_count):
        extra = bias[f] if bias.size else a.dtype.type(0)
        if relu:
            bad |= _bias_relu(buf[f], extra, True)
        for n in range(buf.shape[1] // (2 * hq * wp)):
            at = ((n0 + n) * f_count + f) * hq * wq
            for i in range(hq):
                top = np.uint64(f * buf.shape[1] + (n * hq * 2 + i * 2) * wp)
                for j in range(wq):
                    k = top + np.uint64(2 * j)
                    a0, a1 = bf[k], bf[k + np.uint64(1)]
                    a2, a3 = bf[k + np.uint64(wp)], bf[k + np.uint64(wp + 1)]
                    if relu:
                        m0, m1 = (a0 if a0 > a1 else a1), (a2 if a2 > a3 else a3)
                        af[np.uint64(at + i * wq + j)] = m0 if m0 > m1 else m1
                    else:
                        bad |= not (abs(a0 + a1 + a2 + a3) < math.inf)
                        af[at + i * wq + j] = _max2(_max2(a0, a1), _max2(a2, a3)) + extra
    return bad


@kernel(inline=True)
def _from_nchw(a, n0, buf, sums):
    """buf[f, n*P + q] = a[n0 + n, f, q] for the chunk's samples, and sums[f] += their sum
    (skipped when sums is empty)."""
    f_count = a.shape[1]
    p = a.size // (a.shape[0] * f_count)
    af = flat(a)
    for f in range(f_count):
        row = buf[f]
        total = sums[f] if sums.size else a.dtype.type(0)
        for n in range(buf.shape[1] // p):
            plane = af[((n0 + n) * f_count + f) * p:((n0 + n) * f_count + f + 1) * p]
            part = row[n * p:(n + 1) * p]
            for q in range(p):
                part[q] = plane[q]
                total += plane[q]
        if sums.size:
            sums[f] = total
