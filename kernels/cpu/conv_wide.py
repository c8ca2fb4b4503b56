"""conv2d_forward_wide: the forward of a padded convolution of stride 1 for evaluate and
predict, which unfolds the input in runs of whole padded rows.

conv2d_forward's im2col copies one output row at a time (runs of Wo values, fewer where the
padding clips them) and zeroes its columns first where there is padding. Here each row of the
columns is one run of the padded input per sample: column t = i*wp + j, for every j of the
padded width wp = W + pl + pr, holds the window at output (i, j). The GEMM is wp/Wo times
wider than the output, and the copy back keeps j < Wo. Codegen runs it where that paid (see
nngraph/backends/cpu/lower/conv2d.py _wide): padded, at most 1.5 times the work.

Layout and scratch as in conv.py (chunks of samples within COLS_CHUNK values, the product
channel-major in ybuf), with the rows of cols and ybuf Ho*wp long per sample.
"""
from ._jit import kernel
from ._views import copy_run, flat, rows
from .blas import gemm_serial as gemm
from .conv import COLS_CHUNK, _bias_relu, _to_nchw_pool2, check_geometry


@kernel(inline=True)
def _wide_to_nchw(a, n0, buf, bias, relu, wp):
    """_to_nchw from conv2d_forward_wide's rows: a[n0 + n, f, i, j] = buf[f, (n*Ho + i)*wp
    + j] + bias[f] for j < Wo (the values at j >= Wo are not outputs), through relu when
    relu is set. Bias and relu go over all of buf first, in place, in one loop LLVM
    vectorises, then the outputs' rows are copied (a loop per row runs scalar on rows
    shorter than a vector, and was slower than conv2d_forward on small planes). Returns
    whether any value of buf, before relu, was NaN or infinite: every value of x reaches an
    output (stride 1), and the values that are not outputs are sums of x's values too, so
    one is non-finite only where x has a NaN or an infinity or the sum overflows (the full
    scan of predict's input check then finds nothing)."""
    f_count, ho, wo = a.shape[1], a.shape[2], a.shape[3]
    af, bad = flat(a), False
    lines, width = (1, ho * wo) if wp == wo else (ho, wo)     # a 1x1 conv: whole planes
    for f in range(f_count):
        extra = bias[f] if bias.size else a.dtype.type(0)
        row = buf[f]
        bad |= _bias_relu(row, extra, relu)
        for n in range(buf.shape[1] // (ho * wp)):
            at = ((n0 + n) * f_count + f) * ho * wo
            for i in range(lines):
                copy_run(af, at + i * width, row, (n * ho + i) * wp, width)
    return bad


@kernel(inline=True)
def _unfold_wide(x, n0, cols, xp, kh, kw, pt, pl, hp, wp, ho):
    """conv2d_forward_wide's columns of samples n0 .. n0+g, g = cols.shape[1] // (Ho*wp):

        cols[(c, u, v), (n, t)] = xpad[n0 + n, c].flat[u*wp + v + t],  t < Ho*wp

    with xpad the padded input, rows of wp = W + pl + pr values; column t = i*wp + j is
    output (i, j) for j < Wo, and the columns with j >= Wo read the next row (not outputs).
    Each row of cols is then one run per sample. Padded: the chunk's samples are copied
    into xp first, whose padding is zero (the caller's) and stays zero; the runs of the
    last plane read past it into xp's kw - 1 zeros at the end. Unpadded: the runs read x,
    and the last sample's that would read past its end read zeros."""
    channels, h, w = x.shape[1], x.shape[2], x.shape[3]
    m, run = cols.shape[1], ho * wp
    xf, cf = flat(x), flat(cols)
    plane, pplane = h * w, hp * wp
    padded = hp != h or wp != w
    if padded:
        for n in range(m // run):
            for c in range(channels):
                for i in range(h):
                    copy_run(xp, (n * channels + c) * pplane + (i + pt) * wp + pl,
                             xf, ((n0 + n) * channels + c) * plane + i * w, w)
    src, base = (xp, 0) if padded else (xf, n0 * channels * plane)
    for c in range(channels):
        for u in range(kh):
            for v in range(kw):
                row = ((c * kh + u) * kw + v) * m
                for n in range(m // run):
                    start = base + (n * channels + c) * pplane + u * wp + v
                    count = run if start + run <= src.size else src.size - start
                    copy_run(cf, row + n * run, src, start, count)
                    for t in range(row + n * run + count, row + (n + 1) * run):
                        cf[t] = 0


@kernel
def conv2d_forward_wide(x, w, b, y, cols, ybuf, relu, pool, pt, pb, pl, pr):
    """conv2d_forward for stride 1 and no dilation, without keep (evaluate and predict),
    unfolding the input in runs of whole padded rows: per chunk of samples, cols = the
    columns of every (i, j) of the padded width, j < W + pl + pr = wp, one run of x (or of
    its padded copy) per sample and row of cols instead of one per output row; one GEMM
    over them, of wp/Wo times the work; the copy back takes j < Wo. The columns j >= Wo
    read other values of x, which reach only outputs that are not kept: a GEMM's output
    columns are independent.

    pool: 1, or 2 for a 2x2 max pooling at stride 2 applied in the copy back, y then being
    (N, F, Ho/2, Wo/2), Ho and Wo even. Returns whether any value before relu (and pooling)
    was NaN or infinite; every value of x reaches one, as for conv2d_forward. (With relu or
    pool=1 the columns that are not outputs count too: where x is finite only an overflow
    makes one non-finite, and predict's full scan of its input then finds nothing.)

    Scratch (values): cols >= C*kh*kw * g*Ho*wp, and C * g*(H + pt + pb)*wp + kw more where
    there is padding (the padded copy); ybuf >= F * g*Ho*wp; g = the samples per chunk, as
    many as keep C*kh*kw * g*Ho*wp within COLS_CHUNK (at least 1, at most N).

    Against conv2d_forward it was faster on every padded convolution measured (3x3 'same'
    on 8x8 to 32x32, 5x5 padded by 2), most on small planes and few channels, and about
    the same on a 1x1 conv. Codegen runs it where it paid: padded, at most 1.5 times the
    work (backends/cpu/lower/conv2d.py _wide)."""
    n_batch, channels, h, wd = x.shape
    f_count, _, kh, kw = w.shape
    if pool != 1 and pool != 2:
        raise ValueError("conv2d_forward_wide: pool is 1 or 2")
    if pt < 0 or pb < 0 or pl < 0 or pr < 0:
        raise ValueError("conv2d_forward_wide: negative padding")
    ho, wo = y.shape[2] * pool, y.shape[3] * pool
    check_geometry(h, wd, ho, wo, kh, kw, 1, 1, pt, pb, pl, pr, 1, 1)
    if w.shape[1] != channels or y.shape[0] != n_batch or y.shape[1] != f_count \
            or (b.size and b.size != f_count):
        raise ValueError("conv2d_forward_wide: shapes of x, w, b and y do not fit")
    hp, wp = h + pt + pb, wd + pl + pr
    ckk, run = channels * kh * kw, ho * wp
    g = COLS_CHUNK // (ckk * run) if ckk * run > 0 else n_batch
    g = 1 if g < 1 else n_batch if g > n_batch else g
    cf, yf = flat(cols), flat(ybuf)
    at = ckk * g * run                      # the padded copy's place in cols
    extra = channels * g * hp * wp + kw if hp != h or wp != wd else 0
    if cf.size < at + extra or yf.size < f_count * g * run:
        raise ValueError("conv2d_forward_wide: a scratch buffer is smaller than it needs")
    xp = cf[at:at + extra]
    for i in range(xp.size):
        xp[i] = 0
    w2 = rows(flat(w), ckk)
    bad = False
    for n0 in range(0, n_batch, g):
        m = (g if n0 + g <= n_batch else n_batch - n0) * run
        c, yb = rows(cf[:ckk * m], m), rows(yf[:f_count * m], m)
        _unfold_wide(x, n0, c, xp, kh, kw, pt, pl, hp, wp, ho)
        gemm(1.0, w2, False, c, False, 0.0, yb)
        bad |= _wide_to_nchw(y, n0, yb, b, relu, wp) if pool == 1 else \
            _to_nchw_pool2(y, n0, yb, b, relu, wp)
    return bad
