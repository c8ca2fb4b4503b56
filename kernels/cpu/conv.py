"""Convolution kernels, NCHW: im2col + one BLAS GEMM per call, col2im for the adjoint.

Layout. `cols` is channel-major over the whole batch: row k = (c, u, v) of the window,
column q = (n, i, j) of the output, shape (C*kh*kw, N*Ho*Wo). Then

    forward          ybuf (F, N*Ho*Wo) = W.reshape(F, C*kh*kw) @ cols,  y[n, f] = ybuf[f, n]
    weight gradient  gW (F, C*kh*kw)   = gybuf @ cols.T,  gybuf[f, n] = gy[n, f]
    input gradient   gcols             = W2.T @ gybuf,   gx = col2im(gcols)

one large GEMM each (BLAS uses both cores) instead of N small ones; the price is a blocked
copy between (N, F, P) and (F, N*P), which is cheap next to im2col. Bias and activation are
the generated epilogue's job: conv2d_forward writes y without bias.

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

Scratch buffers (all C-contiguous, dtype of x):
    cols  (C*kh*kw, N*Ho*Wo)   conv2d_forward fills it; conv2d_backward reads it, so keep it
                               alive from forward to backward (or call im2col again)
    ybuf  (F, N*Ho*Wo)         forward's GEMM output
    gybuf (F, N*Ho*Wo)         backward: gy channel-major
    gcols (C*kh*kw, N*Ho*Wo)   backward: the columns' gradient (may share memory with cols
                               only if cols is no longer needed: gW is computed first)
Optional outputs (gb, gx, gw) are skipped when given as size-0 arrays.

Threads: serial loops, both cores left to BLAS. prange over the batch in im2col was measured
on this 2-core machine (LeNet-5 batch 64, float32, machine load ~2.7): 1.07 ms serial vs
2.87 ms with prange, so it is not used.
"""
import numpy as np

from ._jit import kernel
from .blas import gemm


@kernel
def check_geometry(h, w, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw):
    """Raise ValueError unless (ho, wo) is the output size of the window geometry."""
    eh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ew = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if ho != eh or wo != ew or ho < 1 or wo < 1:
        raise ValueError("window geometry: the output buffer does not have the output size")


@kernel
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


@kernel
def _fill_zero(a):
    flat = a.reshape(a.size)
    for i in range(flat.size):
        flat[i] = 0


@kernel
def im2col(x, cols, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw):
    """cols[(c, u, v), (n, i, j)] = x[n, c, i*sh + u*dh - pt, j*sw + v*dw - pl] (0 outside).

    With padding the buffer is zeroed first, which is cheaper than zeroing loops of their own
    (compile time). For sw == 1 the copy goes through slices: LLVM vectorises that form
    (0.24 ms instead of 1.05 ms for LeNet-5's first layer, batch 64)."""
    n_batch, channels, h, w = x.shape
    p = ho * wo
    q = cols.shape[1]
    if pt > 0 or pl > 0 or (ho - 1) * sh + (kh - 1) * dh >= h + pt \
            or (wo - 1) * sw + (kw - 1) * dw >= w + pl:
        _fill_zero(cols)
    src, dst = x.reshape(x.size), cols.reshape(cols.size)     # flat: no views in the loops
    for n in range(n_batch):
        for c in range(channels):
            plane = (n * channels + c) * h * w
            for u in range(kh):
                i0, i1 = _span(ho, sh, u * dh - pt, h)
                for v in range(kw):
                    off_w = v * dw - pl
                    j0, j1 = _span(wo, sw, off_w, w)
                    out = ((c * kh + u) * kw + v) * q + n * p
                    for i in range(i0, i1):
                        o = out + i * wo
                        s = plane + (i * sh + u * dh - pt) * w + off_w
                        if sw == 1:                 # as slices, the copy vectorises
                            d, a = dst[o + j0:o + j1], src[s + j0:s + j1]
                            for j in range(j1 - j0):
                                d[j] = a[j]
                        else:
                            for j in range(j0, j1):
                                dst[o + j] = src[s + j * sw]


@kernel
def col2im(gcols, gx, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw):
    """Adjoint of im2col: gx = 0, then gx[n, c, r, s] += every column entry that read it."""
    n_batch, channels, h, w = gx.shape
    p = ho * wo
    q = gcols.shape[1]
    _fill_zero(gx)
    src, dst = gcols.reshape(gcols.size), gx.reshape(gx.size)
    for n in range(n_batch):
        for c in range(channels):
            plane = (n * channels + c) * h * w
            for u in range(kh):
                i0, i1 = _span(ho, sh, u * dh - pt, h)
                for v in range(kw):
                    off_w = v * dw - pl
                    j0, j1 = _span(wo, sw, off_w, w)
                    col = ((c * kh + u) * kw + v) * q + n * p
                    for i in range(i0, i1):
                        o = plane + (i * sh + u * dh - pt) * w + off_w
                        g = col + i * wo
                        if sw == 1:
                            d, a = dst[o + j0:o + j1], src[g + j0:g + j1]
                            for j in range(j1 - j0):
                                d[j] += a[j]
                        else:
                            for j in range(j0, j1):
                                dst[o + j * sw] += src[g + j]


@kernel
def to_channel_major(a, buf):
    """buf[f, n*P + q] = a[n, f, q] for a (N, F, ...) array."""
    n_batch, f_count = a.shape[0], a.shape[1]
    a3 = a.reshape(n_batch, f_count, a.size // (n_batch * f_count))
    p = a3.shape[2]
    for n in range(n_batch):
        for f in range(f_count):
            src, dst = a3[n, f], buf[f]
            for q in range(p):
                dst[n * p + q] = src[q]


@kernel
def _channel_sums(a, sums):
    """sums[f] = a[:, f].sum() for a (N, F, ...) array."""
    n_batch, f_count = a.shape[0], a.shape[1]
    a3 = a.reshape(n_batch, f_count, a.size // (n_batch * f_count))
    for f in range(f_count):
        total = a.dtype.type(0)
        for n in range(n_batch):
            row = a3[n, f]
            for k in range(row.shape[0]):
                total += row[k]
        sums[f] = total


@kernel
def from_channel_major(buf, a):
    """a[n, f, q] = buf[f, n*P + q]: the inverse of to_channel_major."""
    n_batch, f_count = a.shape[0], a.shape[1]
    a3 = a.reshape(n_batch, f_count, a.size // (n_batch * f_count))
    p = a3.shape[2]
    for n in range(n_batch):
        for f in range(f_count):
            src, dst = buf[f], a3[n, f]
            for q in range(p):
                dst[q] = src[n * p + q]


@kernel
def conv2d_forward(x, w, y, cols, ybuf, sh, sw, pt, pb, pl, pr, dh, dw):
    """y (N, F, Ho, Wo) = conv2d(x (N, C, H, W), w (F, C, kh, kw)), no bias. Fills cols."""
    n_batch, channels, h, wd = x.shape
    f_count, _, kh, kw = w.shape
    ho, wo = y.shape[2], y.shape[3]
    check_geometry(h, wd, ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    if cols.shape[0] != channels * kh * kw or cols.shape[1] != n_batch * ho * wo \
            or ybuf.shape[0] != f_count or ybuf.shape[1] != cols.shape[1] \
            or w.shape[1] != channels or y.shape[0] != n_batch or y.shape[1] != f_count:
        raise ValueError("conv2d_forward: buffer shapes do not fit x, w and y")
    im2col(x, cols, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw)
    gemm(1.0, w.reshape(f_count, channels * kh * kw), False, cols, False, 0.0, ybuf)
    from_channel_major(ybuf, y)


@kernel
def conv2d_backward(gy, w, cols, gw, gb, gx, gybuf, gcols, sh, sw, pt, pb, pl, pr, dh, dw):
    """From gy (N, F, Ho, Wo): gw (F, C, kh, kw), gb (F,), gx (N, C, H, W); each skipped
    when given with size 0. `cols` must hold im2col(x) (as conv2d_forward left it)."""
    n_batch, f_count, ho, wo = gy.shape
    channels, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    ckk = channels * kh * kw
    if cols.shape[0] != ckk or cols.shape[1] != n_batch * ho * wo \
            or gybuf.shape[0] != f_count or gybuf.shape[1] != cols.shape[1]:
        raise ValueError("conv2d_backward: buffer shapes do not fit gy and w")
    to_channel_major(gy, gybuf)
    if gb.size:
        _channel_sums(gy, gb)
    if gw.size:
        gemm(1.0, gybuf, False, cols, True, 0.0, gw.reshape(f_count, ckk))
    if gx.size:
        check_geometry(gx.shape[2], gx.shape[3], ho, wo, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
        if gcols.shape[0] != ckk or gcols.shape[1] != cols.shape[1]:
            raise ValueError("conv2d_backward: gcols does not fit")
        gemm(1.0, w.reshape(f_count, ckk), True, gybuf, False, 0.0, gcols)
        col2im(gcols, gx, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw)


@kernel
def conv2d_transpose_forward(x, w, y, xbuf, gcols, sh, sw, pt, pb, pl, pr):
    """y (N, F, Ho, Wo) = conv2d_transpose(x (N, C, H, W), w (C, F, kh, kw)), no bias.
    Scratch: xbuf (C, N*H*W), gcols (F*kh*kw, N*H*W). pb, pr may be negative (see top)."""
    n_batch, channels, h, wd = x.shape
    f_count, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    check_geometry(y.shape[2], y.shape[3], h, wd, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1)
    if xbuf.shape[0] != channels or xbuf.shape[1] != n_batch * h * wd \
            or gcols.shape[0] != f_count * kh * kw or gcols.shape[1] != xbuf.shape[1]:
        raise ValueError("conv2d_transpose_forward: buffer shapes do not fit x and w")
    to_channel_major(x, xbuf)
    gemm(1.0, w.reshape(channels, f_count * kh * kw), True, xbuf, False, 0.0, gcols)
    col2im(gcols, y, h, wd, kh, kw, sh, sw, pt, pl, 1, 1)


@kernel
def conv2d_transpose_backward(x, w, gy, gw, gb, gx, xbuf, cols, gxbuf, sh, sw, pt, pb, pl, pr):
    """From gy (N, F, Ho, Wo): gw (C, F, kh, kw), gb (F,), gx (N, C, H, W), each skipped when
    size 0. Scratch: xbuf and gxbuf (C, N*H*W), cols (F*kh*kw, N*H*W)."""
    n_batch, channels, h, wd = x.shape
    f_count, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    check_geometry(gy.shape[2], gy.shape[3], h, wd, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1)
    if xbuf.shape[0] != channels or xbuf.shape[1] != n_batch * h * wd \
            or cols.shape[0] != f_count * kh * kw or cols.shape[1] != xbuf.shape[1] \
            or gxbuf.shape[0] != channels or gxbuf.shape[1] != xbuf.shape[1]:
        raise ValueError("conv2d_transpose_backward: buffer shapes do not fit x and w")
    im2col(gy, cols, h, wd, kh, kw, sh, sw, pt, pl, 1, 1)
    if gb.size:
        _channel_sums(gy, gb)
    w2 = w.reshape(channels, f_count * kh * kw)
    if gw.size:
        to_channel_major(x, xbuf)
        gemm(1.0, xbuf, False, cols, True, 0.0, gw.reshape(channels, f_count * kh * kw))
    if gx.size:
        gemm(1.0, w2, False, cols, False, 0.0, gxbuf)
        from_channel_major(gxbuf, gx)
