"""The BLAS's own threads, lent to a loop of ours: the optimizer update on both cores.

MKL runs its products on a team of Intel OpenMP (libiomp5) threads, which keep spinning for
a while after each product (KMP_BLOCKTIME, 200 ms unless set) before they sleep. A loop of
ours can run on that same team through the OpenMP runtime's entry point __kmpc_fork_call,
the call a C compiler makes for `#pragma omp parallel`. Right after a training step's
products the team is awake, and no second pool of threads competes with MKL's for the
cores, as numba's prange would bring one (with prange the update ran many times slower:
optim.py).

The update is memory-bound: an MLP's 109k float32 parameters, gradients and momentum are
1.3 MB, read from L3 after the products have filled the caches, and one core's share of the
L3 bandwidth limits it, so the team's second core more than halves the update's time.

A task is a C-callable function (numba cfunc) with the signature of an outlined OpenMP
region, void(int32 *global_tid, int32 *bound_tid, int64 *job), which every thread of the
team runs once. The job (Job) cuts the work into PARTS parts that the threads take with an
atomic counter (take), so every part runs once however many threads the team really has
(one, say, when the runtime is busy elsewhere). Tasks are compiled when first run, cached
on disk like the kernels.

Only with MKL as the BLAS (blas.PROVIDER) on its Intel threading layer, with at least two
threads; AVAILABLE is False otherwise and callers run their loops serially. MKL takes GNU
OpenMP instead when that is loaded first (`import torch` before nngraph's kernels).
"""
from __future__ import annotations

import ctypes
import os
import types as pytypes

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from . import blas
from ._jit import FASTMATH, Pipeline

PARTS = 2
"""Parts a job is cut into: one per core of the 2-core machines this backend is tuned on."""

TASK = types.void(types.CPointer(types.int32), types.CPointer(types.int32),
                  types.CPointer(types.int64))
"""A task's signature: OpenMP's global and team thread numbers (unused), then the job."""

# The job's int64 words: [0] the counter that parts are taken with, [1] the length of the
# arrays, [2:6] their addresses (the first again for fewer), [6] the address of the float64
# scalars, then per part: lo, hi, segments, and the addresses of its seg_start, seg_end and
# seg_lr.
_ARRAYS, _SCALARS, _PART0, _PART_WORDS = 2, 6, 8, 6
JOB_WORDS = _PART0 + PARTS * _PART_WORDS


def _runtime():
    """ctypes handle of the Intel OpenMP runtime that MKL runs its products on, or None.

    MKL chooses its threading layer when first asked about threads: Intel OpenMP unless
    MKL_THREADING_LAYER says otherwise or GNU OpenMP is in the process already (PyTorch
    brings its libgomp). On GNU's, a team of Intel's would be a second pool of threads
    beside MKL's, and with PyTorch imported first the MLP's update ran many times slower,
    and erratically. So only MKL's Intel layer, loaded, will do."""
    if blas.PROVIDER != "mkl":
        return None
    mkl = blas.mkl_library()
    if mkl is None or mkl.MKL_Get_Max_Threads() < 2:     # also makes MKL choose its layer
        return None
    if blas.load_library("libmkl_intel_thread.so*", [], loaded_only=True) is None:
        return None
    return blas.load_library("libiomp5.so", ["libiomp5.so"], loaded_only=True)


class _Ident(ctypes.Structure):
    """OpenMP's ident_t: where a parallel region comes from, for the runtime's messages."""
    _fields_ = [("reserved_1", ctypes.c_int32), ("flags", ctypes.c_int32),
                ("reserved_2", ctypes.c_int32), ("reserved_3", ctypes.c_int32),
                ("psource", ctypes.c_char_p)]


_omp = _runtime()
AVAILABLE = _omp is not None
"""Whether tasks can run on the BLAS's team in this process."""

if AVAILABLE:
    _fork = _omp.__kmpc_fork_call                 # variadic: arguments passed as ctypes
    _fork.restype = None
    _push = _omp.__kmpc_push_num_threads
    _push.restype, _push.argtypes = None, [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32]
    _thread_id = _omp.__kmpc_global_thread_num
    _thread_id.restype, _thread_id.argtypes = ctypes.c_int32, [ctypes.c_void_p]
    _SOURCE = ctypes.create_string_buffer(b";nngraph;team;0;0;;")
    _IDENT = _Ident(0, 2, 0, 0, ctypes.cast(_SOURCE, ctypes.c_char_p))   # 2: KMP_IDENT_KMPC
    _WHERE = ctypes.addressof(_IDENT)
    _WHERE_POINTER, _ONE = ctypes.c_void_p(_WHERE), ctypes.c_int32(1)


@intrinsic
def pointer(typingctx, address, dtype):
    """The int64 `address` as a pointer to `dtype` (np.float32, np.int64, ...), for carray."""
    target = dtype.instance_type if isinstance(dtype, types.NumberClass) else None
    if target is None:
        return None
    sig = types.CPointer(target)(address, dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@intrinsic
def take(typingctx, job):
    """The next part of a job: job[0], atomically incremented."""
    sig = types.int64(job)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], array,
                                       [context.get_constant(types.intp, 0)])
        return builder.atomic_rmw("add", ptr, ir.Constant(ir.IntType(64), 1), "seq_cst")

    return sig, codegen


class Job:
    """What a task works on: up to four flat arrays of one length (parameters, gradients,
    optimizer slots), their segment table (kernels/cpu/optim.py) cut into PARTS parts at
    64-byte boundaries, and eight float64 scalars (`scalars`, set before each run). Keeps
    everything it points to alive."""

    def __init__(self, arrays, seg_start, seg_end, seg_lr):
        n = arrays[0].size
        cuts = [0] + [(n * k // PARTS) // 16 * 16 for k in range(1, PARTS)] + [n]
        self.arrays, self.scalars = list(arrays), np.zeros(8)
        self.words = np.zeros(JOB_WORDS, np.int64)
        self.words[1] = n
        for i in range(4):                      # p stands in for arrays there are not
            self.words[_ARRAYS + i] = arrays[i if i < len(arrays) else 0].ctypes.data
        self.words[_SCALARS] = self.scalars.ctypes.data
        self.tables = []
        for k in range(PARTS):
            lo, hi = cuts[k], cuts[k + 1]
            # each segment cut to [lo, hi), counted from lo; empty where it lies outside
            start = np.ascontiguousarray(np.clip(seg_start, lo, hi) - lo, np.int64)
            end = np.ascontiguousarray(np.clip(seg_end, lo, hi) - lo, np.int64)
            rates = np.ascontiguousarray(seg_lr, np.float64)
            self.tables.append((start, end, rates))
            at = _PART0 + k * _PART_WORDS
            self.words[at:at + _PART_WORDS] = [lo, hi, len(start), start.ctypes.data,
                                               end.ctypes.data, rates.ctypes.data]
        self.address = ctypes.c_void_p(self.words.ctypes.data)


@register_jitable
def array(j, i, dtype):
    """Flat array i of a job, from its words j."""
    return carray(pointer(j[_ARRAYS + i], dtype), j[1])


@register_jitable
def scalars(j):
    """The float64 scalars of a job, from its words j."""
    return carray(pointer(j[_SCALARS], np.float64), 8)


@register_jitable
def part(j, k):
    """(lo, hi, seg_start, seg_end, seg_lr) of part k of a job, from its words j: the part
    is [lo, hi) of the flat arrays, its segments counted from lo."""
    at = _PART0 + k * _PART_WORDS
    count = j[at + 2]
    return (j[at], j[at + 1], carray(pointer(j[at + 3], np.int64), count),
            carray(pointer(j[at + 4], np.int64), count),
            carray(pointer(j[at + 5], np.float64), count))


@register_jitable
def words(job):
    """A task's job pointer as the array of its words."""
    return carray(job, JOB_WORDS)


class Task:
    """A function with TASK's signature, compiled as a C-callable function on first use,
    or ahead of it by backends/cpu/compiler.py, to which it looks like a kernel with one
    signature, () (py_func, overloads, stats, compile)."""

    COMPILE_S = 1.2
    """Rough cold compile seconds (with the kernel it calls), for compiler.share: what the
    MLP's sgd task took in the compile worker."""

    def __init__(self, fn):
        self.py_func, self.compiled = fn, None
        self.stats = pytypes.SimpleNamespace(cache_misses={})

    @property
    def overloads(self) -> dict:
        return {(): self.compiled} if self.compiled is not None else {}

    def compile(self, sig=()):
        """Compile (or load from numba's cache) once."""
        if self.compiled is None:
            self.compiled = cfunc(TASK, cache=True, error_model="numpy",
                                  fastmath=set(FASTMATH), pipeline_class=Pipeline)(self.py_func)
            if not self.compiled.cache_hits:
                self.stats.cache_misses[()] = 1
            self.address = ctypes.c_void_p(self.compiled.address)
        return self.compiled


def run(task: Task, job: Job, threads: int) -> None:
    """Run `task` over `job` on `threads` threads of the team (this one among them)."""
    task.compile()
    job.words[0] = 0
    _push(_WHERE, _thread_id(_WHERE), threads)
    _fork(_WHERE_POINTER, _ONE, task.address, job.address)
