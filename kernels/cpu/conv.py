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

Window geometry, im2col, col2im and the copies between NCHW and a chunk's channel-major
buffer are in conv_cols.py.

Threads: serial loops, and the chunks' GEMMs on the calling thread too (blas.gemm_serial):
each chunk's columns and product then stay in one core's cache, where a second MKL thread
did not pay. prange over the batch was measured slower than the serial loop.
"""
from ._jit import kernel
from ._views import flat, rows
from .blas import gemm_serial as gemm
from .conv_cols import (_bias_relu, _col2im, _from_nchw, _im2col, _to_nchw, _to_nchw_pool2,
                        check_geometry)
from .conv_cols import _span  # noqa: F401  pool.py imports it from here, with check_geometry

COLS_CHUNK = 1 << 16
"""Values of im2col columns per chunk (256 KiB in float32)."""

GWT_FILTERS, GWT_ROWS = 8, 256
"""conv2d_backward takes the weight gradient through its transpose (scratch gwt) for more
than GWT_FILTERS filters and fewer than GWT_ROWS rows of cols (C*kh*kw): codegen plans gwt
by the same rule."""


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
    _check_shapes(gy, y, w, gw, gb)
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
    _through_relu(gy, y)
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
            _weight_gradient(c, gyb, gw2, gw2t, transposed, 0.0 if n0 == 0 else 1.0)
        if gx.size:
            gemm(1.0, w2, True, gyb, False, 0.0, c)
            _col2im(gx, n0, c, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw)
    if gw.size:
        _untranspose(gw2, gw2t)


@kernel(inline=True)
def _check_shapes(gy, y, w, gw, gb):
    """conv2d_backward's check of gy, y, w, gw and gb against each other."""
    if w.shape[0] != gy.shape[1] or (gw.size and gw.size != w.size) \
            or (gb.size and gb.size != gy.shape[1]) or (y.size and y.size != gy.size):
        raise ValueError("conv2d_backward: shapes of gy, y, w, gw and gb do not fit")


@kernel(inline=True)
def _check_input(x, n_batch, channels, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw):
    if x.shape[0] != n_batch or x.shape[1] != channels:
        raise ValueError("conv2d_backward: x or gx does not fit gy and w")
    check_geometry(x.shape[2], x.shape[3], ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)


@kernel(inline=True)
def _through_relu(gy, y):
    """gy = gy where y > 0, else 0, in place (y: the output of a forward that applied relu,
    gy its gradient); nothing when y is empty."""
    if y.size:
        gf, yf = flat(gy), flat(y)
        for i in range(gf.size):
            if not yf[i] > 0:
                gf[i] = 0


@kernel(inline=True)
def _weight_gradient(c, gyb, gw2, gw2t, transposed, beta):
    """One chunk's weight gradient, from its columns c (C*kh*kw, m) and its gradient gyb
    (F, m): gw2 (F, C*kh*kw) = gyb @ c.T + beta * gw2, or when transposed the same into
    gw2t (C*kh*kw, F) as c @ gyb.T (see conv2d_backward; _untranspose copies it to gw2)."""
    if transposed:
        gemm(1.0, c, False, gyb, True, beta, gw2t)
    else:
        gemm(1.0, gyb, False, c, True, beta, gw2)


@kernel(inline=True)
def _untranspose(gw2, gw2t):
    """gw2 = gw2t.T, where conv2d_backward took the weight gradient through its transpose;
    nothing where it did not (gw2t empty)."""
    for k in range(gw2t.shape[0]):
        for f in range(gw2t.shape[1]):
            gw2[f, k] = gw2t[k, f]


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
