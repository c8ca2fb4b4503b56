"""Waiting for another thread without sleeping: atomic flags that jitted code spins on.

A thread that sleeps on a lock or an event takes a tenth of a millisecond or more to wake,
more than a LeNet-5 half-batch can spare. The backend's second thread
(backends/cpu/parallel.py) therefore spins here, with the GIL released, for a while after
each job, and the thread that hands it work spins here until the work is done: a round trip
then costs several times less, most of what is left being the GIL changing hands.
"""
import platform

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import kernel

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def _load_acquire(typingctx, flags, i):
    """flags[i] of an int64 array, read atomically (acquire): never hoisted out of a loop."""
    sig = types.int64(flags, i)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1]])
        return builder.load_atomic(ptr, ordering="acquire", align=8)

    return sig, codegen


@intrinsic
def _store_release(typingctx, flags, i, value):
    """flags[i] = value, atomically (release): what was written before is seen first."""
    sig = types.void(flags, i, value)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1]])
        v = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(v, ptr, ordering="release", align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _pause(typingctx):
    """The spin-wait hint (x86 `pause`): lets the other hyperthread run, saves power."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module,
                                                ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@kernel
def wait_change(flags, i, seen, spins):
    """flags[i] once it differs from `seen`, or `seen` after `spins` tries (a try is a
    pause instruction, ~15 ns on the development VM)."""
    for _ in range(spins):
        v = _load_acquire(flags, i)
        if v != seen:
            return v
        _pause()
    return seen


@kernel
def publish(flags, i, value):
    """flags[i] = value, after everything this thread wrote before."""
    _store_release(flags, i, value)
