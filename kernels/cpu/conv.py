"""Convolution kernels, NCHW: im2col + BLAS GEMM over chunks of the batch, col2im for the
adjoint.

Layout. The batch is processed in chunks of g samples, as many as keep the columns of one
chunk within COLS_CHUNK values (256 KiB in float32: still in L2 when the GEMM reads them).
The chunk starting at sample n0 has its own block of `cols`, channel-major: row k = (c, u, v)
of the window, column (n, i, j) of the output, shape (C*kh*kw, g*Ho*Wo), at offset
C*kh*kw*n0*Ho*Wo. With W2 = W.reshape(F, C*kh*kw) and P = Ho*Wo:

    forward          ybuf (F, g*P) = W2 @ cols,  y[n0 + n, f] = ybuf[f, n*P:(n+1)*P] + b[f]
    weight gradient  gW += gybuf @ cols.T,       gybuf[f, n*P:(n+1)*P] = gy[n0 + n, f]
    input gradient   gcols = W2.T @ gybuf,       gx[n0:n0 + g] = col2im(gcols)

Chunks rather than one im2col and one GEMM over the whole batch: those columns have rows
16-64 KiB apart (power-of-two strides) and, at large batches, megabytes long, and the
whole-batch form took up to twice as long.

Evaluate and predict run conv_wide.conv2d_forward_wide instead of conv2d_forward for padded
convolutions of stride 1: its columns are runs of whole padded rows of the input, for a
GEMM a little wider than the output.

Geometry. sh, sw strides; pt, pb, pl, pr padding (top, bottom, left, right); dh, dw dilation.
The output size must satisfy Ho = (H + pt + pb - dh*(kh-1) - 1) // sh + 1 (checked).

Callers lift the other ops onto these kernels:
- conv1d: x (N, C, L) -> x.reshape(N, C, 1, L), W (F, C, k) -> (F, C, 1, k), y (N, F, Lo) ->
  (N, F, 1, Lo); sh = 1, pt = pb = 0, dh = 1; stride, padding, dilation go to the w axis.
- conv2d_transpose is the adjoint pair: its forward is conv2d's input gradient and its
  backward conv2d's forward and weight gradient, with W (C_in, F, kh, kw) read as a conv2d
  weight of C_in filters, and the geometry read the other way round (its output is conv2d's
  input). Padding per axis: explicit p gives lo = p, hi = p - output_padding; 'same' gives
  lo = max(k - s, 0) // 2, hi = k - s - lo; 'valid' lo = 0, hi = -output_padding. hi may be
  negative: the output then extends past the scatter with zeros. Dilation is 1.

Scratch buffers (C-contiguous, dtype of x), sized in values:
    cols  >= C*kh*kw * N*Ho*Wo   every chunk's columns, kept by conv2d_forward(keep=True) for
                                 conv2d_backward; C*kh*kw * g*Ho*Wo do without keep, and for
                                 a conv2d_backward given x (it then unfolds x again)
    ybuf  >= F * g*Ho*Wo         one chunk's output (gybuf: its gradient), channel-major
Optional inputs and outputs (b; gb, gx, gw) are skipped when given as size-0 arrays.

Indices into flat views are cast to np.uint64 where they are sums of products: numba then
drops its negative-index wraparound, whose select keeps LLVM from vectorising the copies.
With unsigned indices LLVM also versions the copy loop on stride == 1 by itself, so one
loop serves every stride (a loop per case made each kernel that calls im2col slower to
compile).

Threads: serial loops, and the chunks' GEMMs on the calling thread too (blas.gemm_serial):
each chunk's columns and product then stay in one core's cache, where a second MKL thread
did not pay. prange over the batch was measured slower than the serial loop.
"""
import math

import numpy as np

from ._jit import kernel
from ._views import add_run, copy_run, flat, rows
from .blas import gemm_serial as gemm

COLS_CHUNK = 1 << 16
"""Values of im2col columns per chunk (256 KiB in float32)."""

GWT_FILTERS, GWT_ROWS = 8, 256
"""conv2d_backward takes the weight gradient through its transpose (scratch gwt) for more
than GWT_FILTERS filters and fewer than GWT_ROWS rows of cols (C*kh*kw): codegen plans gwt
by the same rule."""


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


@kernel
def conv2d_forward(x, w, b, y, cols, ybuf, keep, relu, pool, sh, sw, pt, pb, pl, pr, dh,
                   dw):
    """y (N, F, Ho, Wo) = conv2d(x (N, C, H, W), w (F, C, kh, kw)) + b (F,), b optional, then
    relu when relu is set; returns whether any value before relu was NaN or infinite (with
    stride 1 and no dilation every value of x reaches one: predict's input check, see codegen
    Site.check_input). Per chunk: im2col, one GEMM, bias (and relu) applied in the copy
    back to NCHW, which saves a pass over y. keep: every chunk's columns go to their own
    block of cols, for conv2d_backward; else each chunk reuses the first block, which stays
    in cache.

    pool: 1, or 2 for a 2x2 max pooling at stride 2 applied in the copy back, y then being
    (N, F, Ho/2, Wo/2) with Ho and Wo even; not with keep (the backward reads the unpooled
    output). The conv2d lowering asks for it (pools_in_copy_back) where predict and
    evaluate pool a conv's output and nothing else reads it: pooling in the copy back adds
    less time than the pooling kernel it stands in for takes.
    (Evaluate and predict run conv_wide.conv2d_forward_wide instead for padded convolutions
    of stride and dilation 1.)"""
    n_batch, channels, h, wd = x.shape
    f_count, _, kh, kw = w.shape
    if pool != 1 and (pool != 2 or keep):
        raise ValueError("conv2d_forward: pool is 1, or 2 without keep")
    ho, wo = y.shape[2] * pool, y.shape[3] * pool
    check_geometry(h, wd, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    if w.shape[1] != channels or y.shape[0] != n_batch or y.shape[1] != f_count \
            or (b.size and b.size != f_count):
        raise ValueError("conv2d_forward: shapes of x, w, b and y do not fit")
    ckk, p = channels * kh * kw, ho * wo
    g = COLS_CHUNK // (ckk * p) if ckk * p > 0 else n_batch    # samples per chunk, 1..N
    g = 1 if g < 1 else n_batch if g > n_batch else g
    cf, yf = flat(cols), flat(ybuf)
    if cf.size < ckk * (n_batch if keep else g) * p or yf.size < f_count * g * p:
        raise ValueError("conv2d_forward: a scratch buffer is smaller than it needs")
    w2 = rows(flat(w), ckk)
    bad = False
    for n0 in range(0, n_batch, g):
        m, at = (g if n0 + g <= n_batch else n_batch - n0) * p, ckk * n0 * p if keep else 0
        c, yb = rows(cf[at:at + ckk * m], m), rows(yf[:f_count * m], m)
        _im2col(x, n0, c, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw)
        gemm(1.0, w2, False, c, False, 0.0, yb)
        bad |= _to_nchw(y, n0, yb, b, relu) if pool == 1 else \
            _to_nchw_pool2(y, n0, yb, b, relu, wo)
    return bad


@kernel
def conv2d_backward(x, gy, y, w, gw, gb, gx, cols, gybuf, gwt, sh, sw, pt, pb, pl, pr, dh, dw):
    """From gy (N, F, Ho, Wo): gw (F, C, kh, kw), gb (F,), gx (N, C, H, W), each skipped when
    given with size 0. Per chunk: gy to channel-major (summed into gb), gw += gy @ cols.T,
    then gcols = W2.T @ gy and col2im into gx (gcols overwrites the chunk's cols).

    y: when the forward applied relu (conv2d_forward(..., relu=True)), its output y, and gy
    the gradient of that output: gy is first taken through relu in place (gy where y > 0,
    else 0). Size 0: no relu.

    The columns: with x (N, C, H, W) given, im2col of x per chunk (cols then needs room for
    one chunk); with x None (or empty), cols must hold what conv2d_forward left there (saves
    an im2col). With None the im2col is not even compiled in (numba drops the branches
    `x is not None` guards), which shortens the compile.

    For more than 8 filters and fewer than 256 rows of cols, gw.T += cols @ gy.T (into gwt,
    C*kh*kw x F values of scratch, copied to gw at the end) instead, when gwt has the room:
    MKL runs that form about 3x faster for those shapes, and several times slower for 3-8
    filters. (gwt is the caller's, not np.empty's: allocating here added to the compile in
    each process.)"""
    n_batch, f_count, ho, wo = gy.shape
    channels, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    if w.shape[0] != f_count or (gw.size and gw.size != w.size) \
            or (gb.size and gb.size != f_count) or (y.size and y.size != gy.size):
        raise ValueError("conv2d_backward: shapes of gy, y, w, gw and gb do not fit")
    unfold = False
    if x is not None:
        unfold = x.size > 0
        if unfold:
            _check_input(x, n_batch, channels, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    if gx.size:
        _check_input(gx, n_batch, channels, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    ckk, p = channels * kh * kw, ho * wo
    g = COLS_CHUNK // (ckk * p) if ckk * p > 0 else n_batch    # samples per chunk, 1..N
    g = 1 if g < 1 else n_batch if g > n_batch else g
    cf, gyf = flat(cols), flat(gybuf)
    if cf.size < ckk * (g if unfold else n_batch) * p or gyf.size < f_count * g * p:
        raise ValueError("conv2d_backward: a scratch buffer is smaller than it needs")
    w2, gw2 = rows(flat(w), ckk), rows(flat(gw), ckk)
    transposed = f_count > GWT_FILTERS and ckk < GWT_ROWS and gwt.size >= ckk * f_count
    gw2t = rows(flat(gwt)[:ckk * f_count if transposed else 0], f_count)
    if y.size:                          # through relu, in place
        gf, yf = flat(gy), flat(y)
        for i in range(gf.size):
            if not yf[i] > 0:
                gf[i] = 0
    for f in range(gb.size):
        gb[f] = 0
    for n0 in range(0, n_batch, g):
        m, at = (g if n0 + g <= n_batch else n_batch - n0) * p, 0 if unfold else ckk * n0 * p
        c, gyb = rows(cf[at:at + ckk * m], m), rows(gyf[:f_count * m], m)
        _from_nchw(gy, n0, gyb, gb)
        if x is not None:
            if gw.size and unfold:
                _im2col(x, n0, c, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw)
        if gw.size:
            beta = 0.0 if n0 == 0 else 1.0
            if transposed:
                gemm(1.0, c, False, gyb, True, beta, gw2t)
            else:
                gemm(1.0, gyb, False, c, True, beta, gw2)
        if gx.size:
            gemm(1.0, w2, True, gyb, False, 0.0, c)
            _col2im(gx, n0, c, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw)
    for k in range(gw2t.shape[0] if gw.size else 0):
        for f in range(f_count):
            gw2[f, k] = gw2t[k, f]


@kernel(inline=True)
def _check_input(x, n_batch, channels, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw):
    if x.shape[0] != n_batch or x.shape[1] != channels:
        raise ValueError("conv2d_backward: x or gx does not fit gy and w")
    check_geometry(x.shape[2], x.shape[3], ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)


@kernel
def conv2d_transpose_forward(x, w, b, y, cols, xbuf, relu, sh, sw, pt, pb, pl, pr):
    """y (N, F, Ho, Wo) = conv2d_transpose(x (N, C, H, W), w (C, F, kh, kw)) + b (F,), b
    optional, then relu when relu is set; returns whether any value before relu was NaN or
    infinite. The input gradient of the conv2d of weight w whose output is x: conv2d_backward
    with x None, called as codegen calls it for a conv2d (one compiled version serves both),
    then bias and relu in one pass over y. Scratch: cols >= F*kh*kw * N*H*W, xbuf >= C * N*H*W
    values (codegen's per-sample plans). pb, pr may be negative (see top)."""
    f_count = y.shape[1]
    if w.shape[1] != f_count or (b.size and b.size != f_count):
        raise ValueError("conv2d_transpose_forward: shapes of w, b and y do not fit")
    conv2d_backward(None, x, x[:0], w, w[:0], b[:0], y, cols, xbuf, b[:0],
                    sh, sw, pt, pb, pl, pr, 1, 1)
    p = y.shape[2] * y.shape[3]
    yf, bad = flat(y), False
    for n in range(y.shape[0]):
        for f in range(f_count):
            at = (n * f_count + f) * p
            bad |= _bias_relu(yf[at:at + p], b[f] if b.size else y.dtype.type(0), relu)
    return bad


@kernel
def conv2d_transpose_backward(x, w, gy, y, gw, gb, gx, cols, xbuf, gwt, sh, sw, pt, pb, pl,
                              pr):
    """From gy (N, F, Ho, Wo): gw (C, F, kh, kw), gb (F,), gx (N, C, H, W), gw and gb skipped
    when size 0. y: when the forward applied relu, its output (gy is taken through relu in
    place first, and summed into gb on the way); size 0: no relu.

    gx is the conv2d of gy (conv2d_forward), gw that conv2d's weight gradient for output
    gradient x (conv2d_backward with x None, from the columns of gy that conv2d_forward
    keeps in cols): both called as codegen calls them for a conv2d, so a network with both
    ops compiles each once, and gy is unfolded once. gx must therefore be given whenever gw
    is (a scratch array where the input's gradient is not wanted); size 0 with gw size 0.
    Scratch: cols >= F*kh*kw * N*H*W, xbuf >= C * N*H*W values, gwt as conv2d_backward's
    (F*kh*kw * C values, or empty)."""
    n_batch, f_count = gy.shape[0], gy.shape[1]
    p = gy.shape[2] * gy.shape[3]
    if w.shape[1] != f_count or (gb.size and gb.size != f_count) \
            or (y.size and y.size != gy.size):
        raise ValueError("conv2d_transpose_backward: shapes of gy, y, w and gb do not fit")
    if gw.size and not gx.size:
        raise ValueError("conv2d_transpose_backward: gw needs gx (a scratch array will do)")
    for f in range(gb.size):
        gb[f] = 0
    if y.size or gb.size:                 # through relu in place, summed into gb
        gf, yf = flat(gy), flat(y)
        for n in range(n_batch):
            for f in range(f_count):
                at, total = (n * f_count + f) * p, gy.dtype.type(0)
                for q in range(at, at + p):
                    if y.size and not yf[q] > 0:
                        gf[q] = 0
                    total += gf[q]
                if gb.size:
                    gb[f] += total
    if gx.size:
        conv2d_forward(gy, w, gb[:0], gx, cols, xbuf, gw.size > 0, False, 1,
                       sh, sw, pt, pb, pl, pr, 1, 1)
    if gw.size:
        conv2d_backward(None, x, x[:0], w, gw, gb[:0], gx[:0], cols, xbuf, gwt,
                        sh, sw, pt, pb, pl, pr, 1, 1)
