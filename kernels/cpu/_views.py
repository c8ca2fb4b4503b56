"""Views of C-contiguous arrays, for the kernels' flat loops: `flat(a)` is a.reshape(-1) and
`rows(a, n)` is a 1-D a as (a.size // n, n), without numba's reshape; and short runs of
values copied or added in vectors of 8 (copy_run, add_run: im2col's and col2im's rows).

numba lowers every `a.reshape(...)` into a call of a compiled helper that normalises the
shape (compiled once per process) and a call of its C routine that works out the strides,
with an error branch after it. Neither call can be seen through, so LLVM knows nothing of
the view's shape and strides. For a C-contiguous array the view is just the same pointer
with a new shape, which these intrinsics build in a few instructions. The convolution
kernels' IR and machine code shrink by about a quarter at the same speed, and no process
compiles numba's reshape helper. Each view would update reference counts, which slowed a
two-thread predict, but the kernels run without numba's reference counting (_jit.py).

flat() and rows() give views (they share a's memory and keep it alive, as reshape does)
and cannot fail: rows() of a with n < 1 is an empty (0, 0) view, and a.size values that do
not fill the last row leave it out.
"""
from llvmlite import ir
from numba.core import cgutils, errors, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _contiguous(a, what):
    if not isinstance(a, types.Array) or a.layout != "C":
        raise errors.TypingError(f"{what}: a C-contiguous array, not {a}")


@intrinsic
def flat(typingctx, a):
    """a.reshape(-1) of a C-contiguous array: a 1-D view of all its values."""
    _contiguous(a, "flat")
    out = a.copy(ndim=1, layout="C")

    def codegen(context, builder, signature, args):
        src = make_array(a)(context, builder, args[0])
        view = make_array(out)(context, builder)
        populate_array(view, data=src.data, shape=[src.nitems], strides=[src.itemsize],
                       itemsize=src.itemsize, meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, out, view._getvalue())

    return out(a), codegen


@intrinsic
def rows(typingctx, a, n):
    """A 1-D C-contiguous a as a (a.size // n, n) C-contiguous matrix view; (0, 0) for n < 1."""
    _contiguous(a, "rows")
    if a.ndim != 1 or not isinstance(n, types.Integer):
        raise errors.TypingError(f"rows: a 1-D array and an integer, not {a} and {n}")
    out = a.copy(ndim=2, layout="C")

    def codegen(context, builder, signature, args):
        src = make_array(a)(context, builder, args[0])
        intp = context.get_value_type(types.intp)
        width = context.cast(builder, args[1], signature.args[1], types.intp)
        zero, one = intp(0), intp(1)
        positive = builder.icmp_signed(">", width, zero)
        width = builder.select(positive, width, zero)
        count = builder.select(positive, builder.sdiv(src.nitems,
                                                      builder.select(positive, width, one)),
                               zero)
        view = make_array(out)(context, builder)
        populate_array(view, data=src.data, shape=[count, width],
                       strides=[builder.mul(width, src.itemsize), src.itemsize],
                       itemsize=src.itemsize, meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, out, view._getvalue())

    return out(a, n), codegen


def _runs(name, add):
    """An intrinsic dst[at:at + count] (+)= src[start:start + count] for 1-D C-contiguous
    arrays of one dtype, eight values at a time (one unaligned vector load, and store, each),
    then one by one. No bounds checks: the caller's indices must be in range, as for the
    kernels' unchecked indexing. LLVM's own vectorised loop needs at least 32-64 values
    before its vector body runs at all, and im2col's runs are one output row long (8-28
    values in LeNet-5)."""

    def run(typingctx, dst, at, src, start, count):
        for a in (dst, src):
            _contiguous(a, name)
        if dst.ndim != 1 or src.ndim != 1 or dst.dtype != src.dtype \
                or not all(isinstance(i, types.Integer) for i in (at, start, count)):
            raise errors.TypingError(f"{name}: two 1-D arrays of one dtype and three integers")

        def codegen(context, builder, signature, args):
            d = make_array(dst)(context, builder, args[0])
            s = make_array(src)(context, builder, args[2])
            intp = context.get_value_type(types.intp)
            at_, start_, count_ = (context.cast(builder, args[k], signature.args[k], types.intp)
                                   for k in (1, 3, 4))
            to = builder.gep(d.data, [at_], inbounds=True)
            frm = builder.gep(s.data, [start_], inbounds=True)
            item = context.get_data_type(dst.dtype)
            align = context.get_abi_sizeof(item)

            def move(k, vector):
                a = builder.gep(frm, [k], inbounds=True)
                b = builder.gep(to, [k], inbounds=True)
                if vector is not None:
                    a, b = builder.bitcast(a, vector.as_pointer()), \
                        builder.bitcast(b, vector.as_pointer())
                value = builder.load(a, align=align)
                if add:
                    value = builder.fadd(builder.load(b, align=align), value)
                builder.store(value, b, align=align)

            blocks = builder.sdiv(count_, intp(8))
            with cgutils.for_range(builder, blocks) as loop:
                move(builder.mul(loop.index, intp(8)), ir.VectorType(item, 8))
            done = builder.mul(blocks, intp(8))
            with cgutils.for_range(builder, builder.sub(count_, done)) as loop:
                move(builder.add(done, loop.index), None)
            return context.get_dummy_value()

        return types.void(dst, at, src, start, count), codegen

    run.__name__ = run.__qualname__ = name
    return intrinsic(run)


# On im2col's and col2im's short rows these beat the plain loop LLVM vectorises, whose vector
# body the rows are too short to reach; the price is somewhat larger IR.
copy_run = _runs("copy_run", add=False)
"""copy_run(dst, at, src, start, count): dst[at:at + count] = src[start:start + count]."""

add_run = _runs("add_run", add=True)
"""add_run(dst, at, src, start, count): dst[at:at + count] += src[start:start + count]
(float arrays)."""
