"""LLVM's function passes at O1, not O3, for nngraph's code.

numba optimises each function of a new module on its own (LLVM's function pipeline at the
opt level, O3), then the whole library once more with the O3 module pipeline, which runs the
same function simplifications again, then inlines, unrolls and vectorises. For our kernels
the first O3 pass is work done twice: at O1 it still cleans the IR up (SROA, instcombine,
simplifycfg, early CSE) for the module pipeline, whose machine code comes out nearly the same
size with the same vector instructions, while the function passes take about half the time
they take at O3. At O0 the module pipeline has more to do (at times more than the function
passes save) and the code comes out different.

install() changes numba's CPUCodeLibrary._optimize_functions for modules that define
nngraph's functions (whose mangled names carry the module path: nngraph.kernels.cpu.*, the
generated nngraph_gen_* modules); other code numba compiles in the process is left alone,
and so is a numba without the new pass manager's _pass_builder.
"""
from numba.core import codegen

FUNCTION_OPT = 1


def _ours(ll_module) -> bool:
    return any("nngraph" in f.name for f in ll_module.functions if not f.is_declaration)


def install() -> bool:
    """Whether the passes run at FUNCTION_OPT from now on (not on a numba without the
    internals this replaces)."""
    library = codegen.CPUCodeLibrary
    if getattr(library, "_nngraph_passes", False):
        return True
    if not hasattr(codegen.CPUCodegen, "_pass_builder") \
            or not hasattr(library, "_optimize_functions"):
        return False
    numba_optimize = library._optimize_functions

    def _optimize_functions(self, ll_module):
        if not _ours(ll_module):
            return numba_optimize(self, ll_module)
        ll_module.data_layout = self._codegen._data_layout
        for func in ll_module.functions:
            fpm, pb = self._codegen._function_pass_manager(opt=FUNCTION_OPT)
            with self._recorded_timings.record(f"Function passes on {func.name!r}", pb):
                fpm.run(func, pb)

    library._optimize_functions = _optimize_functions
    library._nngraph_passes = True
    return True
