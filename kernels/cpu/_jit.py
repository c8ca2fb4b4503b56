"""The one decorator every CPU kernel uses, so that its flags are set in one place.

- cache=True: compiled code is kept on disk and reused, and compiled again when any file of
  kernels/cpu changes (_cache.py; every change to numba's internals is in _patches.py).
- error_model="numpy": no division-by-zero checks in the loops.
- nogil=True: the CPU backend runs two halves of a batch on two threads.
- no_cfunc_wrapper=True: no C-callable wrapper, which nothing here uses and which numba
  would compile with every function.
- _nrt=False: no reference counting of arrays. No kernel keeps an array beyond its call, and
  the atomic counts on shared arrays (weights) make the two threads of a split batch fight
  over their cache lines. A kernel that allocates arrays says `@kernel(nrt=True)`.
- numba's nopython pipeline without its NopythonRewrites pass (Pipeline): its rewrites
  (array expressions, arrays of constants) find nothing in code that allocates no arrays,
  but the pass walks every instruction of every kernel.
- fastmath without 'nnan'/'ninf': reassociation (vectorised reductions), contraction (FMA)
  and fast reciprocals, while isnan/isinf and NaN propagation keep working.
- No literal specialisation: numba would compile a callee again for every combination of
  constant int/bool arguments jitted code passes it (every conv geometry); kernels made
  here are typed with the arguments' plain types, so one compiled version serves them all.

Kernels are compiled lazily, once per dtype signature; float32 and float64 are supported.
"""
import numba
from numba.core import types
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import PassManager
from numba.core.typed_passes import NopythonRewrites

from . import _patches

_patches.install()      # every change to numba's internals, each with its reason

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})


class Pipeline(CompilerBase):
    """numba's nopython pipeline less NopythonRewrites (see the top): for every kernel, and
    the C callbacks of blas.py and team.py (`pipeline_class=Pipeline`)."""

    def define_pipelines(self):
        _patches.install_for_compile()
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
