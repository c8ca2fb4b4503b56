"""General matrix products for the CPU kernels: C = alpha op(A) op(B) + beta C.

numba's np.dot cannot scale, accumulate into C or take a strided view without copying it,
and it calls the OpenBLAS that SciPy ships, which is slow on the skinny products of small
networks. `gemm` here calls the Fortran `sgemm`/`dgemm` of a BLAS chosen when this module is
imported:

    mkl        Intel oneMKL (the `mkl` wheel, libmkl_rt), when it can be loaded;
    openblas   SciPy's OpenBLAS through scipy.linalg.cython_blas otherwise.

NNGRAPH_BLAS=mkl|openblas forces one (mkl fails loudly when it cannot be loaded). Measured on
the 2-core development machine, float32, both threads (GFLOP/s, OpenBLAS -> MKL):
64x784x128 81 -> 147, 784x64x128 105 -> 162, 256x784x128 137 -> 175, 32x128x512 64 -> 86.

How compiled code finds the BLAS: jitted functions call the symbols `nngraph_sgemm` and
`nngraph_dgemm`, which this module binds to the chosen library's entry points with
llvmlite.binding.add_symbol. Numba's on-disk cache stores the call by symbol name, not by
address, so a cached kernel is valid in any process, whichever BLAS that process chose, as
long as this module was imported first (every kernel module imports it). Two more symbols
work the same way: `nngraph_small_[sd]gemm`, the compiled loop for products of one or two
rows (see _LOOP_ROWS), and `nngraph_blas_threads_local`, MKL's per-thread thread count, which
`gemm_serial` sets to 1 around its call.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys

import llvmlite.binding as llvm
from llvmlite import ir
from numba import carray, cfunc
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import FASTMATH, kernel

_SYMBOLS = {"s": "nngraph_sgemm", "d": "nngraph_dgemm"}
_THREADS_SYMBOL = "nngraph_blas_threads_local"


@cfunc(types.int32(types.int32), cache=True)
def _keep_threads(n):
    """Stands in for MKL_Set_Num_Threads_Local where the BLAS has no per-thread setting."""
    return 0


def _mkl_library():
    """ctypes handle of libmkl_rt from the `mkl` wheel (or a system oneMKL), or None."""
    roots = [sys.prefix, os.path.dirname(os.path.dirname(sys.executable))]
    names = [p for root in dict.fromkeys(roots)
             for p in sorted(glob.glob(os.path.join(root, "lib", "libmkl_rt.so*")))]
    names += ["libmkl_rt.so.2", "libmkl_rt.so"]
    for name in names:
        try:
            return ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
    return None


def _mkl_entries():
    lib = _mkl_library()
    if lib is None:
        return None
    entries = {kind: ctypes.cast(getattr(lib, f"{kind}gemm_"), ctypes.c_void_p).value
               for kind in _SYMBOLS}
    entries["threads"] = ctypes.cast(lib.MKL_Set_Num_Threads_Local, ctypes.c_void_p).value
    return entries


def _scipy_entries():
    from scipy.linalg import cython_blas
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                   ctypes.c_char_p]
    entries = {}
    for kind in _SYMBOLS:
        capsule = cython_blas.__pyx_capi__[f"{kind}gemm"]
        entries[kind] = get_pointer(capsule, get_name(capsule))
    entries["threads"] = _keep_threads.address
    return entries


def _bind() -> str:
    wanted = os.environ.get("NNGRAPH_BLAS", "auto").strip().lower() or "auto"
    if wanted not in ("auto", "mkl", "openblas"):
        raise RuntimeError(f"NNGRAPH_BLAS={wanted!r}: choose mkl, openblas or auto")
    entries, name = None, "openblas"
    if wanted in ("auto", "mkl"):
        entries, name = _mkl_entries(), "mkl"
        if entries is None and wanted == "mkl":
            raise RuntimeError("NNGRAPH_BLAS=mkl but libmkl_rt cannot be loaded "
                               "(pip install mkl)")
    if entries is None:
        entries, name = _scipy_entries(), "openblas"
    for kind, symbol in _SYMBOLS.items():
        llvm.add_symbol(symbol, entries[kind])
    llvm.add_symbol(_THREADS_SYMBOL, entries["threads"])
    return name


PROVIDER = _bind()
"""Which BLAS `gemm` calls in this process: 'mkl' or 'openblas'."""


@intrinsic
def _threads_local(typingctx, n):
    """MKL_Set_Num_Threads_Local(n): BLAS threads of the calling thread from now on (0: the
    global setting); returns the previous value. A no-op returning 0 with OpenBLAS."""
    sig = types.int32(n)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [i32]),
                                            _THREADS_SYMBOL)
        return builder.call(fn, [context.cast(builder, args[0], signature.args[0], types.int32)])

    return sig, codegen


@intrinsic
def _xgemm(typingctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Fortran xGEMM on the data of arrays a, b, c (column-major view of the arguments);
    every scalar is passed by reference from the stack, as Fortran wants."""
    kind = "s" if c.dtype == types.float32 else "d"
    sig = types.void(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        i32, i8 = ir.IntType(32), ir.IntType(8)
        real = context.get_value_type(c.dtype)
        ptr = ir.PointerType

        def on_stack(value, ty):
            slot = cgutils.alloca_once(builder, ty)
            builder.store(value, slot)
            return slot

        def as_char(value):
            return on_stack(builder.trunc(value, i8), i8)

        def as_int(value):
            return on_stack(builder.trunc(value, i32), i32)

        def data(value, aty):
            return context.make_array(aty)(context, builder, value).data

        ta, tb, vm, vn, vk, valpha, va, vlda, vb, vldb, vbeta, vc, vldc = args
        fnty = ir.FunctionType(ir.VoidType(), [ptr(i8), ptr(i8), ptr(i32), ptr(i32), ptr(i32),
                                               ptr(real), ptr(real), ptr(i32), ptr(real),
                                               ptr(i32), ptr(real), ptr(real), ptr(i32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOLS[kind])
        real_of = context.cast
        builder.call(fn, [as_char(ta), as_char(tb), as_int(vm), as_int(vn), as_int(vk),
                          on_stack(real_of(builder, valpha, alpha, c.dtype), real),
                          data(va, a), as_int(vlda), data(vb, b), as_int(vldb),
                          on_stack(real_of(builder, vbeta, beta, c.dtype), real),
                          data(vc, c), as_int(vldc)])
        return context.get_dummy_value()

    return sig, codegen


_N, _T = ord("N"), ord("T")


@kernel
def _row_major(x, trans):
    """(transposed?, leading dimension) of x as a row-major matrix: x itself when its rows
    are contiguous, else x.T when its columns are; ValueError for other strides."""
    item = x.itemsize
    rows, cols = x.shape
    if cols <= 1 or x.strides[1] == item:
        ld = x.strides[0] // item if rows > 1 else cols
        return trans, max(ld, cols, 1)
    if rows <= 1 or x.strides[0] == item:
        ld = x.strides[1] // item if cols > 1 else rows
        return not trans, max(ld, rows, 1)
    raise ValueError("gemm: an operand has neither contiguous rows nor contiguous columns")


# With one or two rows a plain loop beats a BLAS call (1x784x128 float32: 6.7 us against 14 us
# for MKL, 1x256x120: 2.5 against 4.7 us); from 64 rows on MKL wins even on small products
# (64x64x10: 2.6 us against 14 us for the loop; Intel Xeon, 2 cores).
_LOOP_ROWS = 2


def _small_gemm(alpha, pa, lda, pb, ldb, beta, pc, ldc, m, n, k):
    """c = alpha a @ b + beta c for row-major a (m x k, row stride lda), b (k x n, ldb) and
    c (m x n, ldc), one row of c at a time, four rows of b per pass over it: the row of c is
    loaded and stored once per four multiply-adds (1x784x128 float32: 6.7 us, against 9.8 us
    one row of b at a time)."""
    a = carray(pa, (m, lda))
    b = carray(pb, (k, ldb))
    c = carray(pc, (m, ldc))
    scale = c.dtype.type(alpha)
    keep = c.dtype.type(beta)
    for r in range(m):
        cr = c[r, :n]
        if beta == 0:
            cr[:] = 0
        elif beta != 1:
            for j in range(n):
                cr[j] *= keep
        i = 0
        while i + 4 <= k:
            a0, a1 = scale * a[r, i], scale * a[r, i + 1]
            a2, a3 = scale * a[r, i + 2], scale * a[r, i + 3]
            b0, b1, b2, b3 = b[i, :n], b[i + 1, :n], b[i + 2, :n], b[i + 3, :n]
            for j in range(n):
                cr[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
            i += 4
        for i in range(i, k):
            ai, bi = scale * a[r, i], b[i, :n]
            for j in range(n):
                cr[j] += ai * bi[j]


# The loop above is compiled once per dtype as a C-callable function and reached through a
# named symbol, like the BLAS: called as an ordinary jitted function its code was linked into,
# and compiled again with, every kernel that calls gemm (+0.2 s of cold compile per kernel).
_SMALL_SYMBOLS = {"s": "nngraph_small_sgemm", "d": "nngraph_small_dgemm"}
for _kind, _real in (("s", types.float32), ("d", types.float64)):
    _ptr = types.CPointer(_real)
    _compiled = cfunc(types.void(types.float64, _ptr, types.intp, _ptr, types.intp,
                                 types.float64, _ptr, types.intp, types.intp, types.intp,
                                 types.intp),
                      cache=True, error_model="numpy", fastmath=set(FASTMATH))(_small_gemm)
    llvm.add_symbol(_SMALL_SYMBOLS[_kind], _compiled.address)


@intrinsic
def _small(typingctx, alpha, a, lda, b, ldb, beta, c, ldc, m, n, k):
    """Call the compiled _small_gemm for c's dtype on the data of arrays a, b, c."""
    kind = "s" if c.dtype == types.float32 else "d"
    sig = types.void(alpha, a, lda, b, ldb, beta, c, ldc, m, n, k)

    def codegen(context, builder, signature, args):
        f64, isz = ir.DoubleType(), context.get_value_type(types.intp)
        ptr = ir.PointerType(context.get_value_type(c.dtype))
        fnty = ir.FunctionType(ir.VoidType(), [f64, ptr, isz, ptr, isz, f64, ptr, isz, isz,
                                               isz, isz])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SMALL_SYMBOLS[kind])
        valpha, va, vlda, vb, vldb, vbeta, vc, vldc, vm, vn, vk = args
        tys = signature.args

        def data(value, aty):
            return context.make_array(aty)(context, builder, value).data

        def real(value, ty):
            return context.cast(builder, value, ty, types.float64)

        def size(value, ty):
            return context.cast(builder, value, ty, types.intp)

        builder.call(fn, [real(valpha, tys[0]), data(va, a), size(vlda, tys[2]), data(vb, b),
                          size(vldb, tys[4]), real(vbeta, tys[5]), data(vc, c),
                          size(vldc, tys[7]), size(vm, tys[8]), size(vn, tys[9]),
                          size(vk, tys[10])])
        return context.get_dummy_value()

    return sig, codegen


@kernel
def gemm(alpha, a, trans_a, b, trans_b, beta, c):
    """c = alpha * op(a) @ op(b) + beta * c, op(x) = x.T when trans_x, in place.

    a, b, c are 2-D arrays of one dtype (float32 or float64) whose rows or columns are
    contiguous (any C- or F-ordered array, or a view of one with a row stride). c must have
    contiguous rows. beta = 0 overwrites c, whatever it held (NaN included). Products with
    one or two rows (see _LOOP_ROWS) run a loop here instead of the BLAS call."""
    m, n = c.shape
    ar, ac = a.shape
    br, bc = b.shape
    k = ar if trans_a else ac
    if (ac if trans_a else ar) != m or (br if trans_b else bc) != n \
            or (bc if trans_b else br) != k:
        raise ValueError("gemm: shapes of op(a), op(b) and c do not chain")
    if m == 0 or n == 0:
        return
    if n > 1 and c.strides[1] != c.itemsize:
        raise ValueError("gemm: c must have contiguous rows")
    ldc = c.strides[0] // c.itemsize if m > 1 else n
    ldc = max(ldc, n, 1)
    if k == 0:
        if beta == 0:
            c[...] = 0
        else:
            for i in range(m):
                for j in range(n):
                    c[i, j] *= beta
        return
    ta, lda = _row_major(a, trans_a)
    tb, ldb = _row_major(b, trans_b)
    if not ta and not tb and m <= _LOOP_ROWS:
        _small(alpha, a, lda, b, ldb, beta, c, ldc, m, n, k)
        return
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B goes first.
    _xgemm(_T if tb else _N, _T if ta else _N, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc)


@kernel
def gemm_serial(alpha, a, trans_a, b, trans_b, beta, c):
    """gemm on the calling thread alone. For the small products of kernels that alternate
    them with their own loops over the same data (the chunks of a convolution): the data
    then stays in this core's cache, where a second BLAS thread would read half of it from
    the other core's cache and leave half of the product there."""
    before = _threads_local(1)
    gemm(alpha, a, trans_a, b, trans_b, beta, c)
    _threads_local(before)
