"""Weight matrices packed once for MKL's products (Model.freeze, codegen Site.packed).

MKL can keep the B operand of a product in the layout its kernels read (cblas_?gemm_pack),
and multiply by it without packing it again on each call (cblas_?gemm_compute), which
blas.py binds to the symbols `nngraph_[sd]gemm_compute`. A frozen model packs its dense
layers' weights once, which makes their products a little faster. The packed copy is MKL's
own format, ~8 MB at least whatever the matrix's size, so only matrices of PACK_MIN
elements or more are packed: the small product of a classifier's last layer was slower
packed.
"""
from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import kernel
from .blas import _LOOP_ROWS, gemm
from .blas_library import _COMPUTE_SYMBOLS, PROVIDER, mkl_library

PACK_MIN = 32768
"""Elements of the smallest weight matrix worth packing."""

_PACK_ROWS = 256            # m for cblas_?gemm_pack_get_size: the packed B serves any m
_ROW_MAJOR, _NO_TRANS, _B_MATRIX, _PACKED = 101, 111, 162, 151


def packs(shape, dtype) -> bool:
    """Would pack() pack a weight matrix of this shape and dtype?"""
    return PROVIDER == "mkl" and len(shape) == 2 and shape[0] * shape[1] >= PACK_MIN \
        and np.dtype(dtype) in (np.float32, np.float64)


def pack(w: np.ndarray) -> np.ndarray:
    """MKL's packed copy of the weight matrix w (k x n, float32 or float64), for
    gemm_packed; an empty array where there is nothing to pack it with (OpenBLAS) or it is
    smaller than PACK_MIN. The copy does not follow later changes to w."""
    if not packs(w.shape, w.dtype):
        return np.zeros(0, np.uint8)
    kind = "s" if w.dtype == np.float32 else "d"
    real = ctypes.c_float if kind == "s" else ctypes.c_double
    lib = mkl_library()
    get_size = getattr(lib, f"cblas_{kind}gemm_pack_get_size")
    get_size.restype, get_size.argtypes = ctypes.c_size_t, [ctypes.c_int] * 4
    packer = getattr(lib, f"cblas_{kind}gemm_pack")
    packer.restype = None
    packer.argtypes = [ctypes.c_int] * 6 + [real, ctypes.c_void_p, ctypes.c_int,
                                            ctypes.c_void_p]
    k, n = w.shape
    w = np.ascontiguousarray(w)
    size = get_size(_B_MATRIX, _PACK_ROWS, n, k)
    raw = np.zeros(size + 64, np.uint8)
    start = -raw.ctypes.data % 64              # MKL's kernels like 64-byte alignment
    buf = raw[start:start + size]
    packer(_ROW_MAJOR, _B_MATRIX, _NO_TRANS, _PACK_ROWS, n, k, 1.0, w.ctypes.data, n,
           buf.ctypes.data)
    return buf


@intrinsic
def _packed_product(typingctx, a, packed, c):
    """c = a @ B for row-major a and c with contiguous rows, B packed in `packed` by
    pack(): MKL's cblas_?gemm_compute."""
    kind = "s" if c.dtype == types.float32 else "d"
    sig = types.void(a, packed, c)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        real = context.get_value_type(c.dtype)
        ptr = ir.PointerType(real)
        va = context.make_array(a)(context, builder, args[0])
        vp = context.make_array(packed)(context, builder, args[1])
        vc = context.make_array(c)(context, builder, args[2])
        m, k = cgutils.unpack_tuple(builder, va.shape, 2)
        n = cgutils.unpack_tuple(builder, vc.shape, 2)[1]
        item = context.get_constant(types.intp,
                                    context.get_abi_sizeof(context.get_value_type(c.dtype)))
        lda = builder.sdiv(cgutils.unpack_tuple(builder, va.strides, 2)[0], item)
        ldc = builder.sdiv(cgutils.unpack_tuple(builder, vc.strides, 2)[0], item)

        def i(value):
            return builder.trunc(value, i32)

        def const(value):
            return ir.Constant(i32, value)

        fnty = ir.FunctionType(ir.VoidType(), [i32] * 6 + [ptr, i32, ptr, i32, real, ptr, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _COMPUTE_SYMBOLS[kind])
        builder.call(fn, [const(_ROW_MAJOR), const(_NO_TRANS), const(_PACKED), i(m), i(n),
                          i(k), va.data, i(lda), builder.bitcast(vp.data, ptr), i(n),
                          ir.Constant(real, 0.0), vc.data, i(ldc)])
        return context.get_dummy_value()

    return sig, codegen


@kernel
def gemm_packed(a, b, packed, c):
    """c = a @ b, through `packed`, b's copy from pack(), when there is one and the product
    suits it (more than _LOOP_ROWS rows, contiguous rows of a and c); else gemm on b."""
    m, k = a.shape
    n = b.shape[1]
    item = a.itemsize
    if packed.size == 0 or m <= _LOOP_ROWS or k == 0 or n == 0 or b.shape[0] != k \
            or c.shape[0] != m or c.shape[1] != n or a.strides[1] != item \
            or c.strides[1] != item or a.strides[0] < k * item or c.strides[0] < n * item:
        gemm(1.0, a, False, b, False, 0.0, c)
    else:
        _packed_product(a, packed, c)
