"""Numba's on-disk cache, made to notice changes in the kernels a cached function calls.

Numba keys a cached function by the content of its own source file only. A kernel compiled
from conv.py has gemm of blas.py compiled into it; after blas.py changes, numba would still
load the old code for conv.py's kernels (and for the generated modules', which call gemm):
at best stale, at worst calling a symbol that now means something else (it crashed the
float64 convolution tests once). Here every function of kernels/cpu and of the generated
modules is keyed by its own file and by the content of all of kernels/cpu together, so a
change to any kernel source recompiles whatever may have used it.

It works by putting a locator first in numba's list (numba.core.caching.CacheImpl): it claims
those files, lets numba's own locators choose the directory, and adds the stamp.

Before numba rebuilds one of these functions from its cache, the functions registered with
before_load() see its compiled code: blas.py binds there the symbols that it calls by name.

Loading one of these functions skips what numba does first before any load: refreshing its
target context, which imports and registers every typing and lowering rule it has (numpy's
linalg among them, and so SciPy's), a large part of a warm `nngraph predict` that loads a
few kernels and compiles nothing (tools/results/startup.md). Compiled code needs none of it,
only numba's runtime (NRT) set up, as after a refresh; a function that is not in the cache is
compiled by numba's own pipeline, which refreshes the context itself (_patches.py: `light`;
NNGRAPH_NUMBA_PATCHES=-light loads them numba's way).
"""
from __future__ import annotations

import functools
import glob
import hashlib
import os

from numba.core import caching
from numba.core.runtime import rtsys

KERNELS_DIR = os.path.dirname(os.path.abspath(__file__))
GENERATED_PREFIX = "nngraph_gen_"     # file names of generated modules (backends/cpu/codegen.py)


@functools.lru_cache(maxsize=None)
def kernels_stamp() -> str:
    """Hash of the content of every kernels/cpu/*.py file."""
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(KERNELS_DIR, "*.py"))):
        digest.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def _claims(py_file: str) -> bool:
    path = os.path.abspath(py_file)
    return os.path.dirname(path) == KERNELS_DIR or \
        os.path.basename(path).startswith(GENERATED_PREFIX)


class KernelsLocator(caching._CacheLocator):
    """Numba's locator for the file, with kernels_stamp() added to its source stamp."""

    def __init__(self, inner):
        self._inner = inner

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return self._inner.get_source_stamp(), kernels_stamp()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @property
    def _py_file(self):
        """The source file, which numba's "cannot cache" warning names."""
        return self._inner._py_file

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _claims(py_file):
            return None
        for other in caching.CacheImpl._locator_classes:
            if other is not cls:
                inner = other.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


_BEFORE_LOAD: list = []


def before_load(fn) -> None:
    """Run fn(code) before any function this module claims is loaded from numba's cache;
    code is the list of byte strings in the cached library (its object code), or None when
    numba stored it in a form this module does not know (then assume it calls anything)."""
    _BEFORE_LOAD.append(fn)


class KernelsCacheImpl(caching.CompileResultCacheImpl):
    """Numba's cache of compiled functions, running the before_load functions before it
    rebuilds one that KernelsLocator located."""

    def rebuild(self, target_context, payload):
        if isinstance(self._locator, KernelsLocator):
            code = _blobs(payload[0]) if isinstance(payload, tuple) and payload else None
            for fn in _BEFORE_LOAD:
                fn(code or None)
        return super().rebuild(target_context, payload)


def _blobs(value) -> list:
    """The byte strings in nested tuples (numba's serialised library: name, kind, (object
    code, bitcode))."""
    if isinstance(value, (bytes, bytearray)):
        return [value]
    if isinstance(value, (tuple, list)):
        return [b for v in value for b in _blobs(v)]
    return []


_numba_load_overload = caching.Cache.load_overload     # FunctionCache's, before install()


def _load_overload(self, sig, target_context):
    """numba's FunctionCache.load_overload without its refresh of the target context (see
    the top) for the functions KernelsLocator located; numba's own for the others."""
    if not isinstance(self._impl._locator, KernelsLocator):
        return _numba_load_overload(self, sig, target_context)
    rtsys.initialize(target_context)
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)


def install(light: bool = True) -> None:
    """Put KernelsLocator first in numba's locator list and KernelsCacheImpl in place of
    numba's cache implementation for jitted functions; with `light`, _load_overload in place
    of its load_overload (once)."""
    classes = caching.CacheImpl._locator_classes
    if KernelsLocator not in classes:
        classes.insert(0, KernelsLocator)
    caching.FunctionCache._impl_class = KernelsCacheImpl
    if light:
        caching.FunctionCache.load_overload = _load_overload
