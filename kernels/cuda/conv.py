"""2-D convolution on the GPU as im2col and one product for the whole batch.

The forward unfolds every window of the batch into the columns of `cols` (C*kh*kw rows,
N*Ho*Wo columns, one thread per value, zeros where a tap falls in the padding) and
multiplies: ybuf (F, N*Ho*Wo) = W (F, C*kh*kw) @ cols. The generated code of the layer then
adds the bias, applies the activation and writes y in NCHW order in one pass (its
epilogue). The backward takes gybuf, the output's gradient in the same (F, N*Ho*Wo) order
(the generated prologue writes it, through the activation's gradient):

    gW (F, C*kh*kw) = gybuf @ cols.T       (conv2d_weight_grad)
    gb = the row sums of gybuf             (reduce.row_sums)
    gcols = W.T @ gybuf, into cols         (conv2d_input_grad: the columns are spent by
    gx = col2im(gcols)                      then, so the weight gradient comes first)

col2im gathers: one thread per input value adds the column entries of the windows that
cover it, so no two threads write one value and the sum's order is fixed (no atomics).
One product for the batch, rather than one per sample, gives the GEMM a wide matrix to
tile; the price is the columns' memory, C*kh*kw*N*Ho*Wo values, which the memory plan
places in the arena like any other scratch buffer.
"""
from __future__ import annotations

from numba import cuda

from .gemm import gemm
from .launch import grid, per_dtype


@cuda.jit
def _im2col(x, cols, geo):
    """cols[(ci*kh + u)*kw + v, (n*Ho + r)*Wo + s] = x[n, ci, r*sh - pt + u*dh, s*sw - pl + v*dw],
    0 outside x."""
    kh, kw, sh, sw, pt, pl, dh, dw, ho, wo = geo
    for i in range(cuda.grid(1), cols.size, cuda.gridsize(1)):
        width = cols.shape[1]
        row, col = i // width, i % width
        v = row % kw
        u = (row // kw) % kh
        ci = row // (kw * kh)
        s = col % wo
        r = (col // wo) % ho
        n = col // (wo * ho)
        h = r * sh - pt + u * dh
        w = s * sw - pl + v * dw
        if 0 <= h < x.shape[2] and 0 <= w < x.shape[3]:
            cols[row, col] = x[n, ci, h, w]
        else:
            cols[row, col] = 0


def _col2im_kernel(dtype):
    @cuda.jit
    def col2im(cols, gx, geo):
        """gx[n, ci, h, w] = the sum of the column entries whose tap reads x[n, ci, h, w]."""
        kh, kw, sh, sw, pt, pl, dh, dw, ho, wo = geo
        for i in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
            w = i % gx.shape[3]
            h = (i // gx.shape[3]) % gx.shape[2]
            ci = (i // (gx.shape[3] * gx.shape[2])) % gx.shape[1]
            n = i // (gx.shape[3] * gx.shape[2] * gx.shape[1])
            acc = dtype(0)
            for u in range(kh):
                hr = h + pt - u * dh
                if hr >= 0 and hr % sh == 0 and hr // sh < ho:
                    r = hr // sh
                    for v in range(kw):
                        wr = w + pl - v * dw
                        if wr >= 0 and wr % sw == 0 and wr // sw < wo:
                            acc += cols[(ci * kh + u) * kw + v, (n * ho + r) * wo + wr // sw]
            gx[n, ci, h, w] = acc
    return col2im


_col2im = per_dtype(_col2im_kernel)


def _geometry(w, geo, x_shape):
    """The kernels' geometry tuple: taps, strides, leading pads, dilations, output size."""
    kh, kw = w.shape[2], w.shape[3]
    sh, sw, pt, pb, pl, pr, dh, dw = geo
    ho = (x_shape[2] + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (x_shape[3] + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return (kh, kw, sh, sw, pt, pl, dh, dw, ho, wo)


def conv2d_forward(x, w, cols, ybuf, sh, sw, pt, pb, pl, pr, dh, dw, stream=0) -> None:
    """ybuf (F, N*Ho*Wo) = the convolution of x (N, C, H, W) with w (F, C, kh, kw), without
    the bias; `cols` (C*kh*kw, N*Ho*Wo) keeps the unfolded windows for the backward."""
    geo = _geometry(w, (sh, sw, pt, pb, pl, pr, dh, dw), x.shape)
    if x.shape[0] == 0:
        return
    _im2col[grid(cols.size) + (stream,)](x, cols, geo)
    f = w.shape[0]
    gemm(1.0, w.reshape(f, w.size // f), False, cols, False, 0.0, ybuf, stream)


def conv2d_weight_grad(gybuf, cols, gw, stream=0) -> None:
    """gw (F, C, kh, kw) = gybuf (F, N*Ho*Wo) @ cols.T, from the output's gradient (after
    the activation's) and the forward's columns."""
    f = gw.shape[0]
    gemm(1.0, gybuf, False, cols, True, 0.0, gw.reshape(f, gw.size // f), stream)


def conv2d_input_grad(gybuf, w, cols, gx, sh, sw, pt, pb, pl, pr, dh, dw, stream=0) -> None:
    """gx (N, C, H, W), the input's gradient: the columns' gradient W.T @ gybuf (into
    `cols`, whose forward values the weight gradient has used) folded back onto the input."""
    f = w.shape[0]
    gemm(1.0, w.reshape(f, w.size // f), True, gybuf, False, 0.0, cols, stream)
    geo = _geometry(w, (sh, sw, pt, pb, pl, pr, dh, dw), gx.shape)
    _col2im(gx.dtype)[grid(gx.size) + (stream,)](cols, gx, geo)


# ---------------------------------------------------------------- conv2d_transpose
# The transposed convolution is conv2d's adjoint, so it runs on the same two kernels the other
# way round: the product W.T @ x gives the columns and col2im folds them onto the output
# (whose windows are the conv2d's); the backward unfolds the output's gradient with im2col.
# x and its gradient take the product's (C, N*H*W) order through the transposes below.

@cuda.jit
def _to_rows(x, rows):
    """rows[c, (n*H + h)*W + w] = x[n, c, h, w]."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        hw = x.shape[2] * x.shape[3]
        p, c, n = i % hw, (i // hw) % x.shape[1], i // (hw * x.shape[1])
        rows[c, n * hw + p] = x[n, c, p // x.shape[3], p % x.shape[3]]


@cuda.jit
def _from_rows(rows, x):
    """x[n, c, h, w] = rows[c, (n*H + h)*W + w]."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        hw = x.shape[2] * x.shape[3]
        p, c, n = i % hw, (i // hw) % x.shape[1], i // (hw * x.shape[1])
        x[n, c, p // x.shape[3], p % x.shape[3]] = rows[c, n * hw + p]


def _transposed_geometry(w, x_shape, sh, sw, pt, pl):
    """The kernels' geometry for a transposed conv of an (N, C, H, W) input: that of the conv2d
    it is the adjoint of, whose output is H x W."""
    return (w.shape[2], w.shape[3], sh, sw, pt, pl, 1, 1, x_shape[2], x_shape[3])


def conv2d_transpose_forward(x, w, xrows, cols, y, sh, sw, pt, pl, stream=0) -> None:
    """y (N, F, Ho, Wo) = the transposed convolution of x (N, C, H, W) with w (C, F, kh, kw),
    without the bias, cropped by the leading pads pt, pl; xrows (C, N*H*W) keeps x in the
    product's order for the weight gradient, cols (F*kh*kw, N*H*W) is scratch."""
    c = w.shape[0]
    _to_rows[grid(x.size) + (stream,)](x, xrows)
    gemm(1.0, w.reshape(c, w.size // c), True, xrows, False, 0.0, cols, stream)
    geo = _transposed_geometry(w, x.shape, sh, sw, pt, pl)
    _col2im(y.dtype)[grid(y.size) + (stream,)](cols, y, geo)


def conv2d_transpose_columns(gy, cols, kh, kw, h, w, sh, sw, pt, pl, stream=0) -> None:
    """cols (F*kh*kw, N*H*W): the windows of gy (N, F, Ho, Wo), the output's gradient after
    the activation's, seen from each of the input's H x W positions (the backward's two
    products read them)."""
    _im2col[grid(cols.size) + (stream,)](gy, cols, (kh, kw, sh, sw, pt, pl, 1, 1, h, w))


def conv2d_transpose_weight_grad(xrows, cols, gw, stream=0) -> None:
    """gw (C, F, kh, kw) = xrows (C, N*H*W) @ cols.T."""
    c = gw.shape[0]
    gemm(1.0, xrows, False, cols, True, 0.0, gw.reshape(c, gw.size // c), stream)


def conv2d_transpose_input_grad(w, cols, gxrows, gx, stream=0) -> None:
    """gx (N, C, H, W) = W (C, F*kh*kw) @ cols, through gxrows (C, N*H*W)."""
    c = w.shape[0]
    gemm(1.0, w.reshape(c, w.size // c), False, cols, False, 0.0, gxrows, stream)
    _from_rows[grid(gx.size) + (stream,)](gxrows, gx)
