"""Every change nngraph makes to numba's internals, in one place, each with why it stays.

    name     kind         what it changes                                   what it pays
    cache    correctness  a cached kernel is compiled again when any file   (numba loaded stale
                          of kernels/cpu changes (_cache.py)                 code, which crashed)
    light    speed        cached kernels load without numba's refresh of    warm predict/eval
                          its typing and lowering rules (_cache.py)         start-up, ~0.5 s
    passes   speed        LLVM's per-function passes at O1 before the O3    LeNet-5 cold compile,
                          module pipeline, for nngraph's code (_passes.py)  ~0.9 s of ~2 s passes
    inline   speed        numba's inliner copies a function's IR once, not  ~0.2 s of LeNet-5's
                          once per block (_inline.py)                       inline pass
    typing   speed        scalar operators skip numba's ufunc-loop search;  ~4% of the compile's
                          no colorama wrapping for unread errors (_typing)  Python calls

(Approximate figures, measured when each patch went in: tools/results, the patch's commit.)

A patch is applied only where numba has the internals it replaces, and the speed patches
only on the numba versions they were tested on (TESTED): elsewhere numba runs as it is,
slower to compile and to start, never wrong. NNGRAPH_NUMBA_PATCHES=0 turns every speed
patch off; `NNGRAPH_NUMBA_PATCHES=-passes,-inline` the ones named. The cache patch always
applies.
"""
from __future__ import annotations

import os

import numba

SPEED = ("light", "passes", "inline", "typing")
TESTED = ((0, 60), (0, 68))         # numba versions (major, minor) the speed patches know
_applied: list = []


def wanted() -> set:
    """The speed patches to apply: all on a tested numba, as NNGRAPH_NUMBA_PATCHES says."""
    version = tuple(int(p) for p in numba.__version__.split(".")[:2] if p.isdigit())
    if not TESTED[0] <= version <= TESTED[1]:
        return set()
    setting = os.environ.get("NNGRAPH_NUMBA_PATCHES", "1").replace(" ", "")
    if setting == "0":
        return set()
    off = {p[1:] for p in setting.split(",") if p.startswith("-")}
    unknown = off - set(SPEED)
    if unknown:
        raise ValueError(f"NNGRAPH_NUMBA_PATCHES: no patch named {', '.join(sorted(unknown))};"
                         f" the patches are {', '.join(SPEED)}")
    return set(SPEED) - off


def install() -> None:
    """The patches a process needs before it loads or compiles a kernel (once)."""
    if _applied:
        return
    from . import _cache, _passes, _typing
    _cache.install(light="light" in wanted())
    _applied.append("cache")
    _applied.extend(["light"] if "light" in wanted() else [])
    if "passes" in wanted() and _passes.install():
        _applied.append("passes")
    if "typing" in wanted() and _typing.install():
        _applied.append("typing")


def install_for_compile() -> None:
    """The patches only a compile needs, applied by the first one (the inliner's module
    brings imports that a process loading cached kernels does without)."""
    if "inline" in wanted() and "inline" not in _applied:
        from . import _inline
        if _inline.install():
            _applied.append("inline")


def applied() -> list:
    """The names of the patches in effect in this process."""
    return list(_applied)
