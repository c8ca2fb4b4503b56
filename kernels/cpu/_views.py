"""Views of C-contiguous arrays, for the kernels' flat loops: `flat(a)` is a.reshape(-1) and
`rows(a, n)` is a 1-D a as (a.size // n, n), without numba's reshape.

numba lowers every `a.reshape(...)` into a call of a compiled helper that normalises the
shape (compiled once per process) and a call of its C routine that works out the strides,
with an error branch after it. Neither call can be seen through, so LLVM knows nothing of
the view's shape and strides. For a C-contiguous array the view is just the same pointer
with a new shape, which these intrinsics build in a few instructions. With them (float32,
LeNet-5's signatures) conv2d_forward's LLVM IR went from 3431 to 2640 lines and its machine
code from 3200 to 2399 instructions, conv2d_backward's from 4317 to 3225 and 4078 to 2931;
on one thread the kernels ran as fast as before (paired runs, LeNet-5's layers at batch 1, 32
and 128). With numba's reference counting still on, the views' counts slowed LeNet-5's
two-thread batch-256 predict by ~15% (1.85-1.9 -> 2.12-2.18 ms); the kernels now run
without it (_jit.py), and that predict takes 1.84-1.85 ms.
maxpool2d_backward, which was the first to compile a reshape in its process, went from
0.59 to 0.21 s.

Both are views (they share a's memory and keep it alive, as reshape does) and cannot fail:
rows() of a with n < 1 is an empty (0, 0) view, and a.size values that do not fill the last
row leave it out.
"""
from numba.core import errors, types
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

