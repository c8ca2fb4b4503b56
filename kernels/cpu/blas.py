"""General matrix products for the CPU kernels: C = alpha op(A) op(B) + beta C.

numba's np.dot cannot scale, accumulate into C or take a strided view without copying it,
and it calls the OpenBLAS that SciPy ships, which is slow on the skinny products of small
networks. `gemm` here calls the Fortran `sgemm`/`dgemm` of the BLAS that blas_library.py chooses and
binds when it is imported (oneMKL where it loads, else SciPy's OpenBLAS; NNGRAPH_BLAS).

How compiled code finds the BLAS: jitted functions call the symbols `nngraph_sgemm` and
`nngraph_dgemm`, which blas_library.py binds to the chosen library's entry points with
llvmlite.binding.add_symbol. Numba's on-disk cache stores the call by symbol name, not by
address, so a cached kernel is valid in any process, whichever BLAS that process chose, as
long as this module was imported first (every kernel module imports it). More symbols
work the same way: `nngraph_product_[sd]`, the compiled product behind `gemm` (argument
checks, then the BLAS call or, for float32 products of one or two rows, the loop
`nngraph_small_sgemm`, see _LOOP_ROWS), and `nngraph_blas_threads_local`, MKL's per-thread
thread count, which `gemm_serial` sets to 1 around its call. Reached through symbols, none
of this code is compiled again into the kernels that call gemm. The products are compiled
when first needed, per dtype (bind_product).
"""
from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import carray, cfunc
from numba.core import cgutils, errors, types
from numba.extending import intrinsic

from . import _cache
from ._jit import FASTMATH, Pipeline, kernel

from .blas_library import (_SYMBOLS, _THREADS_SYMBOL, PER_THREAD, PROVIDER,  # noqa: F401
                           _openblas_controller, load_library, mkl_library, set_threads,
                           threads_local)


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
def _xgemm(typingctx, trans_a, trans_b, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc):
    """Fortran xGEMM on the column-major matrices at pointers pa, pb, pc; every scalar is
    passed by reference from the stack, as Fortran wants."""
    real_type = pc.dtype
    kind = "s" if real_type == types.float32 else "d"
    sig = types.void(trans_a, trans_b, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc)

    def codegen(context, builder, signature, args):
        i32, i8 = ir.IntType(32), ir.IntType(8)
        real = context.get_value_type(real_type)
        ptr = ir.PointerType

        def on_stack(value, ty):
            slot = cgutils.alloca_once(builder, ty)
            builder.store(value, slot)
            return slot

        def as_char(value):
            return on_stack(builder.trunc(value, i8), i8)

        def as_int(value):
            return on_stack(builder.trunc(value, i32), i32)

        ta, tb, vm, vn, vk, valpha, va, vlda, vb, vldb, vbeta, vc, vldc = args
        fnty = ir.FunctionType(ir.VoidType(), [ptr(i8), ptr(i8), ptr(i32), ptr(i32), ptr(i32),
                                               ptr(real), ptr(real), ptr(i32), ptr(real),
                                               ptr(i32), ptr(real), ptr(real), ptr(i32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOLS[kind])
        builder.call(fn, [as_char(ta), as_char(tb), as_int(vm), as_int(vn), as_int(vk),
                          on_stack(context.cast(builder, valpha, alpha, real_type), real),
                          va, as_int(vlda), vb, as_int(vldb),
                          on_stack(context.cast(builder, vbeta, beta, real_type), real),
                          vc, as_int(vldc)])
        return context.get_dummy_value()

    return sig, codegen


_N, _T = ord("N"), ord("T")

# Status codes of the compiled product, raised as errors by `gemm`.
_OK, _NO_CHAIN, _C_ROWS, _STRIDES = 0, 1, 2, 3


@kernel(inline=True)        # into _product: quicker to compile than a function of its own
def _row_major(rows, cols, s0, s1, trans):
    """(ok, transposed?, leading dimension) of a matrix with element strides s0, s1 read as a
    row-major matrix: itself when its rows are contiguous, else its transpose when its
    columns are; ok is False for other strides."""
    if cols <= 1 or s1 == 1:
        ld = s0 if rows > 1 and s0 > cols else cols
        return True, trans, ld if ld > 1 else 1
    if rows <= 1 or s0 == 1:
        ld = s1 if cols > 1 and s1 > rows else rows
        return True, not trans, ld if ld > 1 else 1
    return False, trans, 0


# With one or two rows a plain loop beats a BLAS call, whose fixed cost is then most of the
# time; from 64 rows on MKL wins even on small products.
_LOOP_ROWS = 2


def _small_gemm(alpha, pa, lda, pb, ldb, beta, pc, ldc, m, n, k):
    """c = alpha a @ b + beta c for row-major a (m x k, row stride lda), b (k x n, ldb) and
    c (m x n, ldc), one row of c at a time, four rows of b per pass over it: the row of c is
    loaded and stored once per four multiply-adds, not once per row of b."""
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


# The loop is compiled on its own as a C-callable function for float32 and reached through a
# named symbol: as a jitted callee of _product it would be compiled twice (alone, then again
# inside _product). See bind_product().
_SMALL_SYMBOL = "nngraph_small_sgemm"


@intrinsic
def _loop(typingctx, alpha, pa, lda, pb, ldb, beta, pc, ldc, m, n, k):
    """_small_gemm on float32 matrices, returning True; for float64 nothing, returning False:
    float64 runs for checking, not for speed, so its products always go to the BLAS."""
    sig = types.boolean(alpha, pa, lda, pb, ldb, beta, pc, ldc, m, n, k)
    loop = pc.dtype == types.float32

    def codegen(context, builder, signature, args):
        if not loop:
            return context.get_constant(types.boolean, False)
        f64, isz = ir.DoubleType(), context.get_value_type(types.intp)
        ptr = ir.PointerType(context.get_value_type(types.float32))
        fnty = ir.FunctionType(ir.VoidType(), [f64, ptr, isz, ptr, isz, f64, ptr, isz, isz,
                                               isz, isz])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SMALL_SYMBOL)
        tys = signature.args
        cast = [types.float64, None, types.intp, None, types.intp, types.float64, None,
                types.intp, types.intp, types.intp, types.intp]
        builder.call(fn, [v if to is None else context.cast(builder, v, ty, to)
                          for v, ty, to in zip(args, tys, cast)])
        return context.get_constant(types.boolean, True)

    return sig, codegen


def _product(alpha, pa, ar, ac, as0, as1, trans_a, pb, br, bc, bs0, bs1, trans_b, beta,
             pc, m, n, cs0, cs1, item, serial):
    """c = alpha op(a) @ op(b) + beta c on raw matrices (pointer, shape, byte strides);
    returns a status code (_OK, or the error gemm raises). Compiled once per dtype as a
    C-callable function: see the note below."""
    k = ar if trans_a else ac
    if (ac if trans_a else ar) != m or (br if trans_b else bc) != n \
            or (bc if trans_b else br) != k:
        return _NO_CHAIN
    if m == 0 or n == 0:
        return _OK
    if n > 1 and cs1 != item:
        return _C_ROWS
    ldc = cs0 // item if m > 1 and cs0 // item > n else n
    ldc = ldc if ldc > 1 else 1
    if k == 0:
        c = carray(pc, (m, ldc))
        for i in range(m):
            for j in range(n):
                c[i, j] = 0 if beta == 0 else c[i, j] * beta
        return _OK
    ok_a, ta, lda = _row_major(ar, ac, as0 // item, as1 // item, trans_a)
    ok_b, tb, ldb = _row_major(br, bc, bs0 // item, bs1 // item, trans_b)
    if not (ok_a and ok_b) or as0 % item or as1 % item or bs0 % item or bs1 % item:
        return _STRIDES
    if not ta and not tb and m <= _LOOP_ROWS \
            and _loop(alpha, pa, lda, pb, ldb, beta, pc, ldc, m, n, k):
        return _OK
    before = _threads_local(1) if serial else 0
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B goes first.
    _xgemm(_T if tb else _N, _T if ta else _N, n, m, k, alpha, pb, ldb, pa, lda, beta, pc, ldc)
    if serial:
        _threads_local(before)
    return _OK


# The product is compiled once per dtype as a C-callable function and reached through a named
# symbol, like the BLAS itself. Called as an ordinary jitted function, its code would be
# linked into every kernel that calls gemm and optimised and compiled again with each; through
# the symbol, a kernel that calls gemm costs no more to compile than a plain loop.
_PRODUCT_SYMBOLS = {"s": "nngraph_product_s", "d": "nngraph_product_d"}
_REALS = {"s": types.float32, "d": types.float64}


_bound: set = set()


def bind_product(kind: str) -> None:
    """Compile (or load from numba's cache) the product for kind 's' (float32) or 'd'
    (float64), with its loop, and bind their symbols; once per process.

    Compiled code refers to these symbols by name, so they must be bound before a kernel
    that calls gemm is compiled or loaded from numba's cache. Compiling one types
    _call_product, which binds the product for its dtype; before numba loads any kernel of
    ours from its cache, _cache.py has the ones it calls bound (_before_load). So a float32
    network, compiled cold, never compiles the float64 product, which would add to the
    compile in each process."""
    if kind in _bound:
        return
    _bound.add(kind)
    real, i = _REALS[kind], types.intp
    ptr = types.CPointer(real)
    options = dict(cache=True, error_model="numpy", fastmath=set(FASTMATH), _nrt=True,
                   pipeline_class=Pipeline)
    if kind == "s":
        small = cfunc(types.void(types.float64, ptr, i, ptr, i, types.float64, ptr, i, i, i, i),
                      **options)(_small_gemm)
        llvm.add_symbol(_SMALL_SYMBOL, small.address)
    product = cfunc(types.int32(types.float64, ptr, i, i, i, i, types.boolean,
                                ptr, i, i, i, i, types.boolean, types.float64,
                                ptr, i, i, i, i, i, types.boolean), **options)(_product)
    llvm.add_symbol(_PRODUCT_SYMBOLS[kind], product.address)


def bound_products() -> set:
    """The kinds ('s', 'd') whose product this process has bound."""
    return set(_bound)


def _before_load(code) -> None:
    """Bind the products that a kernel about to be loaded from numba's cache calls (its
    object code names their symbols), or all of them when its code is not known."""
    for kind, symbol in _PRODUCT_SYMBOLS.items():
        if code is None or any(symbol.encode() in blob for blob in code):
            bind_product(kind)


_cache.before_load(_before_load)


@intrinsic
def _call_product(typingctx, alpha, a, trans_a, b, trans_b, beta, c, serial):
    """Call the compiled _product for c's dtype with the pointers, shapes and strides of the
    2-D arrays a, b, c; returns its status."""
    reals = (types.float32, types.float64)
    if not all(isinstance(x, types.Array) and x.ndim == 2 for x in (a, b, c)) \
            or c.dtype not in reals or a.dtype != c.dtype or b.dtype != c.dtype:
        raise errors.TypingError("gemm: a, b and c must be 2-D arrays of one dtype, "
                                 "float32 or float64")
    kind = "s" if c.dtype == types.float32 else "d"
    bind_product(kind)              # before the caller's code is linked against it
    sig = types.int32(alpha, a, trans_a, b, trans_b, beta, c, serial)

    def codegen(context, builder, signature, args):
        f64, isz = ir.DoubleType(), context.get_value_type(types.intp)
        i1 = ir.IntType(1)
        ptr = ir.PointerType(context.get_value_type(c.dtype))
        valpha, va, vta, vb, vtb, vbeta, vc, vserial = args
        tys = signature.args

        def matrix(value, aty):
            array = context.make_array(aty)(context, builder, value)
            return ([array.data] + cgutils.unpack_tuple(builder, array.shape, 2)
                    + cgutils.unpack_tuple(builder, array.strides, 2))

        def flag(value, ty):
            return context.cast(builder, value, ty, types.boolean)

        def real(value, ty):
            return context.cast(builder, value, ty, types.float64)

        item = ir.Constant(isz, context.get_abi_sizeof(context.get_value_type(c.dtype)))
        pc, m, n, cs0, cs1 = matrix(vc, c)
        fnty = ir.FunctionType(ir.IntType(32), [f64, ptr, isz, isz, isz, isz, i1,
                                                ptr, isz, isz, isz, isz, i1, f64,
                                                ptr, isz, isz, isz, isz, isz, i1])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PRODUCT_SYMBOLS[kind])
        return builder.call(fn, [real(valpha, tys[0])] + matrix(va, a) + [flag(vta, tys[2])]
                            + matrix(vb, b) + [flag(vtb, tys[4]), real(vbeta, tys[5]),
                                               pc, m, n, cs0, cs1, item,
                                               flag(vserial, tys[7])])

    return sig, codegen


@kernel
def _gemm(alpha, a, trans_a, b, trans_b, beta, c, serial):
    """gemm and gemm_serial: one compiled function for both, whose errors are raised here."""
    status = _call_product(alpha, a, trans_a, b, trans_b, beta, c, serial)
    if status == _NO_CHAIN:
        raise ValueError("gemm: shapes of op(a), op(b) and c do not chain")
    if status == _C_ROWS:
        raise ValueError("gemm: c must have contiguous rows")
    if status == _STRIDES:
        raise ValueError("gemm: an operand has neither contiguous rows nor contiguous columns")


# gemm and gemm_serial are inlined into their callers: the one function they call is all
# there is to compile (as three functions, gemm, gemm_serial and their error raiser, they
# lengthened every cold compile).
@kernel(inline=True)
def gemm(alpha, a, trans_a, b, trans_b, beta, c):
    """c = alpha * op(a) @ op(b) + beta * c, op(x) = x.T when trans_x, in place.

    a, b, c are 2-D arrays of one dtype (float32 or float64) whose rows or columns are
    contiguous (any C- or F-ordered array, or a view of one with a row stride). c must have
    contiguous rows. beta = 0 overwrites c, whatever it held (NaN included). Products with
    one or two rows (see _LOOP_ROWS) run a loop here instead of the BLAS call."""
    _gemm(alpha, a, trans_a, b, trans_b, beta, c, False)


@kernel(inline=True)
def gemm_serial(alpha, a, trans_a, b, trans_b, beta, c):
    """gemm on the calling thread alone. For the small products of kernels that alternate
    them with their own loops over the same data (the chunks of a convolution): the data
    then stays in this core's cache, where a second BLAS thread would read half of it from
    the other core's cache and leave half of the product there."""
    _gemm(alpha, a, trans_a, b, trans_b, beta, c, True)
