"""The one decorator every CPU kernel uses, so that flags are set in one place.

- cache=True: compiled code is kept in __pycache__ next to the source and reused, and
  compiled again when any file of kernels/cpu changes (_cache.py).
- inline=True helpers are inlined by numba without its quadratic copy of their IR
  (_inline.py, set up by the first compile: numba's inliner is 60-90 ms of imports that a
  process loading its kernels from the cache does without), and LLVM's per-function passes
  run at O1 before the O3 module pipeline (_passes.py).
- numba's typing skips two pieces of work whose results it throws away (_typing.py).
- error_model="numpy": no division-by-zero checks in the generated loops.
- nogil=True: the CPU backend runs two halves of a batch on two threads (backends/cpu.py).
- no_cfunc_wrapper=True: no C-callable wrapper, which numba otherwise compiles with every
  function (for `dispatcher.ctypes` and first-class function values, neither used here):
  ~10 ms of each kernel's compile.
- _nrt=False: no reference counting of arrays. numba increments and decrements an atomic
  count on every array a kernel passes around or views; LLVM removes only some of those
  pairs, and the two threads that share a batch then fight over the cache lines of the
  counts of the arrays both read (weights, biases). None of our kernels keeps an array
  beyond its call, so none needs them: without, conv2d_forward's LLVM IR went from 7149 to
  5633 lines before optimisation, LeNet-5's batch-256 predict from 2.09-2.22 ms to 1.83-1.86
  ms (1.85-1.9 ms before the views of _views.py, whose counts had cost the rest) and its
  training step from 1.42-1.48 to 1.33-1.41 ms (1.39-1.43 before the views; paired runs). A kernel that
  allocated arrays (np.empty, .copy()) would say `@kernel(nrt=True)`; none does now (the
  recurrent kernels take U^T and gx's scratch from codegen). The BLAS products, C
  callbacks compiled while a kernel is being typed, set _nrt=True themselves, as numba would
  otherwise give them the typed kernel's setting.
- numba's nopython pipeline without its NopythonRewrites pass (Pipeline), whose rewrites
  (array expressions into fused loops, arrays of constants, string-literal indexing) find
  nothing in code that allocates no arrays and indexes no records. It walked every
  instruction of every kernel (0.45 s of a 10.6 s one-process LeNet-5 compile), though
  part of that work moves to the IR legalization that follows: the compile's CPU time went
  from 8.29 to 8.14 s and from 9.21 to 9.09 s (means of 8 and 6 alternating pairs, within
  the spread of single runs; machine code unchanged).
- fastmath without 'nnan'/'ninf': reassociation (vectorised reductions), contraction (FMA),
  fast reciprocals, while isnan/isinf and NaN propagation keep working (NUMBA_NOTES.md).
- No literal specialisation: numba compiles a jitted callee again for every combination of
  constant int/bool arguments it is called with from jitted code (`conv2d_forward(..., 1, 1,
  0, 0, ...)` in generated code typed the ints as Literal[int](1) and recompiled the whole
  kernel and its helpers: ~4 s extra for a LeNet-5 step). Kernels made here are typed with
  the arguments' plain types (int64, bool), so one compiled version serves every geometry.

Kernels are compiled lazily, once per dtype signature; float32 and float64 are both supported.
"""
import numba
from numba.core import types
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import PassManager
from numba.core.typed_passes import NopythonRewrites

from . import _cache, _passes, _typing

_cache.install()      # cached kernels notice changes in the kernels they call
_passes.install()
_typing.install()

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})


class Pipeline(CompilerBase):
    """numba's nopython pipeline less NopythonRewrites (see the top): for every kernel, and
    the C callbacks of blas.py and team.py (`pipeline_class=Pipeline`)."""

    def define_pipelines(self):
        from . import _inline
        _inline.install()
        full = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm = PassManager(full.pipeline_name)
        for pass_class, description in full.passes:
            if pass_class is not NopythonRewrites:
                pm.add_pass(pass_class, description)
        pm.finalize()
        return [pm]


def _without_literals(dispatcher):
    """Make calls from jitted code resolve against unliteral argument types."""
    resolve = dispatcher.get_call_template

    def get_call_template(args, kws):
        return resolve(tuple(types.unliteral(a) for a in args),
                       {k: types.unliteral(v) for k, v in kws.items()})
    dispatcher.get_call_template = get_call_template
    return dispatcher


def kernel(fn=None, *, inline=False, nrt=False):
    """`@kernel` = numba.njit(cache=True, nogil=True, error_model='numpy',
    fastmath=FASTMATH, _nrt=False), typed without literal specialisation. Generated modules
    use it too. `@kernel(inline=True)`: inlined into its jitted callers (numba's
    inline='always'). `@kernel(nrt=True)`: for a kernel that allocates arrays."""
    if fn is None:
        return lambda f: kernel(f, inline=inline, nrt=nrt)
    return _without_literals(numba.njit(cache=True, nogil=True, error_model="numpy",
                                        fastmath=set(FASTMATH), no_cfunc_wrapper=True,
                                        _nrt=nrt, pipeline_class=Pipeline,
                                        inline="always" if inline else "never")(fn))
