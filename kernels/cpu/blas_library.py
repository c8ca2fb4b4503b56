"""Which BLAS the CPU kernels call, and its threads: the library is chosen and its entry
points bound to the symbols compiled code calls when this module is imported (blas.py
holds the products that call them; its docstring says how the symbols work).

    mkl        Intel oneMKL (the `mkl` wheel, libmkl_rt), when it can be loaded;
    openblas   SciPy's OpenBLAS otherwise, and on AMD CPUs where it runs AVX-512 kernels.

MKL dispatches its AVX-512 code on Intel CPUs only; on an AMD Zen 4 or 5 it runs its AVX2
kernels, and OpenBLAS's AVX-512 ones (its SkylakeX core, which it picks there itself unless
OPENBLAS_CORETYPE says otherwise) are about twice as fast on the products of small networks.
NNGRAPH_BLAS=mkl|openblas forces one (mkl fails loudly when it cannot be loaded).
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
import sys

import llvmlite.binding as llvm
from numba import cfunc
from numba.core import types

_SYMBOLS = {"s": "nngraph_sgemm", "d": "nngraph_dgemm"}
_THREADS_SYMBOL = "nngraph_blas_threads_local"


def _keep_threads(n):
    """Stands in for MKL_Set_Num_Threads_Local where the BLAS has no per-thread setting
    (compiled as a C callback only then, so that a cold start under MKL does not pay for
    it)."""
    return 0


def load_library(pattern: str, fallbacks: list, loaded_only: bool = False):
    """ctypes handle (global symbols) of the first library that loads: files matching
    `pattern` in this Python's lib directory (where the `mkl` and `intel-openmp` wheels put
    theirs), then the names in `fallbacks` (the system's search path); None if none does.
    `loaded_only`: only a library this process has loaded already, its symbols left where
    they were (a library loaded as another's dependency stays out of the global scope, where
    its symbols would take the place of same-named ones that later libraries need: Intel
    OpenMP's GOMP_* entry points, PyTorch's GNU OpenMP)."""
    roots = [sys.prefix, os.path.dirname(os.path.dirname(sys.executable))]
    names = [p for root in dict.fromkeys(roots)
             for p in sorted(glob.glob(os.path.join(root, "lib", pattern)))]
    if loaded_only and not hasattr(os, "RTLD_NOLOAD"):
        return None
    mode = ctypes.RTLD_LOCAL | os.RTLD_NOLOAD if loaded_only else ctypes.RTLD_GLOBAL
    for name in names + fallbacks:
        try:
            return ctypes.CDLL(name, mode=mode)
        except OSError:
            continue
    return None


def mkl_library():
    """ctypes handle of libmkl_rt from the `mkl` wheel (or a system oneMKL), or None."""
    return load_library("libmkl_rt.so*", ["libmkl_rt.so.2", "libmkl_rt.so"])


def _mkl_entries():
    lib = mkl_library()
    if lib is None:
        return None
    entries = {kind: ctypes.cast(getattr(lib, f"{kind}gemm_"), ctypes.c_void_p).value
               for kind in _SYMBOLS}
    entries["threads"] = ctypes.cast(lib.MKL_Set_Num_Threads_Local, ctypes.c_void_p).value
    for kind in _SYMBOLS:
        entries[f"{kind}compute"] = ctypes.cast(getattr(lib, f"cblas_{kind}gemm_compute"),
                                                ctypes.c_void_p).value
    return entries


AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")
"""OpenBLAS's cores (openblas_get_corename) whose kernels use AVX-512."""


def _mkl_at_its_best() -> bool:
    """Whether MKL runs its best code on this CPU: not on AMD's (llvm's znver, bdver and
    btver names), where it takes its AVX2 path whatever the CPU has."""
    return not llvm.get_host_cpu_name().startswith(("znver", "bdver", "btver"))


@functools.lru_cache(maxsize=None)
def _scipy_openblas():
    """ctypes handle of the OpenBLAS that SciPy's wheel ships (scipy.libs), loaded without
    importing SciPy (0.3 s), or None where SciPy links another BLAS (conda, distributions)."""
    import importlib.util
    spec = importlib.util.find_spec("scipy")
    for where in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(glob.glob(os.path.join(where + ".libs", "libscipy_openblas*.so"))):
            try:
                return ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
            except OSError:
                continue
    return None


def _openblas_core() -> str:
    """OpenBLAS's name for the kernels it chose (lower case), '' where it cannot say."""
    lib = _scipy_openblas()
    for name in ("scipy_openblas_get_corename", "openblas_get_corename"):
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            fn.restype = ctypes.c_char_p
            return fn().decode(errors="replace").lower()
    return ""


def _scipy_entries():
    lib = _scipy_openblas()
    if lib is not None and hasattr(lib, "scipy_sgemm_"):
        entries = {kind: ctypes.cast(getattr(lib, f"scipy_{kind}gemm_"), ctypes.c_void_p).value
                   for kind in _SYMBOLS}
    else:
        entries = _cython_entries()
    _scipy_entries.sgemm = entries["s"]
    global _keep_threads_c          # kept alive: the symbol holds its address
    _keep_threads_c = cfunc(types.int32(types.int32), cache=True)(_keep_threads)
    entries["threads"] = _keep_threads_c.address
    return entries


def _cython_entries():
    """SciPy's BLAS through scipy.linalg.cython_blas's capsules, whichever library it is."""
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
    return entries


_COMPUTE_SYMBOLS = {"s": "nngraph_sgemm_compute", "d": "nngraph_dgemm_compute"}
"""MKL's products with a packed B (cblas_?gemm_compute), which packed.gemm_packed calls."""

_no_compute = None


def _no_compute_address() -> int:
    """Where the packed products' symbols point under a BLAS without them. gemm_packed
    never calls them there (packed.pack() gives empty arrays), but compiled code that names them
    must link in any process; a call would only say so."""
    global _no_compute
    if _no_compute is None:
        def refuse(*args):
            raise RuntimeError("gemm_packed: this BLAS has no packed product")
        _no_compute = ctypes.CFUNCTYPE(None, *[ctypes.c_int] * 6, ctypes.c_void_p,
                                       ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                       ctypes.c_double, ctypes.c_void_p, ctypes.c_int)(refuse)
    return ctypes.cast(_no_compute, ctypes.c_void_p).value


def _bind() -> str:
    # Intel OpenMP's threads spin for KMP_BLOCKTIME after each parallel region before they
    # sleep: 200 ms unless set, which on a busy machine takes a core from every other
    # process (and from our own second thread) for most of the time. One millisecond still
    # covers the gaps between the products of a training step and the next step.
    os.environ.setdefault("KMP_BLOCKTIME", "1")
    wanted = os.environ.get("NNGRAPH_BLAS", "auto").strip().lower() or "auto"
    if wanted not in ("auto", "mkl", "openblas"):
        raise RuntimeError(f"NNGRAPH_BLAS={wanted!r}: choose mkl, openblas or auto")
    entries, name = None, "openblas"
    if wanted == "auto" and not _mkl_at_its_best() and _openblas_core() in AVX512_CORES:
        wanted = "openblas"
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
    for kind, symbol in _COMPUTE_SYMBOLS.items():
        llvm.add_symbol(symbol, entries.get(f"{kind}compute") or _no_compute_address())
    global _set_threads_local
    _set_threads_local = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(entries["threads"])
    return name


PROVIDER = _bind()
"""Which BLAS `gemm` calls in this process: 'mkl' or 'openblas'."""

PER_THREAD = PROVIDER == "mkl"
"""Whether the BLAS thread count can be set per calling thread (see threads_local). Where it
cannot (OpenBLAS), every product runs on the calling thread alone, and the second core is
taken, where it pays, by running a batch's halves on two threads (backends/cpu/parallel.py):
OpenBLAS's results change in the last bit with its thread count, and a model's outputs must
not change with the thread count the scheduler tries."""


def threads_local(n: int) -> int:
    """From Python: BLAS threads for products called from this thread (0: the global
    setting); returns the previous value. Does nothing under OpenBLAS (PER_THREAD False)."""
    return _set_threads_local(n)


def _openblas_controller():
    """threadpoolctl's controller of the OpenBLAS that `gemm` calls (the library that holds
    the sgemm we bound, found with dladdr; SciPy's), or None."""
    from threadpoolctl import ThreadpoolController
    path = None
    try:
        class _Info(ctypes.Structure):
            _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                        ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]
        dladdr = ctypes.CDLL(None).dladdr
        dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Info)]
        info = _Info()
        if dladdr(ctypes.c_void_p(_scipy_entries.sgemm), ctypes.byref(info)):
            path = os.path.realpath(info.fname.decode())
    except (AttributeError, OSError):
        pass
    candidates = ThreadpoolController().select(internal_api="openblas").lib_controllers
    for lib in candidates:
        if path is not None and os.path.realpath(lib.filepath) == path:
            return lib
    scipys = [lib for lib in candidates if "scipy" in os.path.basename(
        os.path.dirname(lib.filepath))]
    return scipys[0] if len(scipys) == 1 else None


_openblas = None


def set_threads(n: int) -> None:
    """BLAS threads for the products that this thread calls from now on: MKL's per-thread
    setting; OpenBLAS's one global count (threadpoolctl) is kept at 1 (see PER_THREAD).
    OpenBLAS's threads must never run beside ours: a LeNet-5 step under OpenBLAS took 80x longer with its two threads
    than with one, its threads waking for every small product of a convolution."""
    global _openblas
    if PER_THREAD:
        _set_threads_local(n)
        return
    n = 1                                           # see PER_THREAD
    if _openblas is None:
        _openblas = _openblas_controller() or False
    if _openblas and _openblas.num_threads != n:     # (setting it may start threads)
        _openblas.set_num_threads(n)
