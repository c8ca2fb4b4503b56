"""numba's IR inlining (the kernels' `inline=True` helpers) without its quadratic copy.

Before it inlines a function, numba deep-copies the function's IR one block at a time, each
block with a memo of its own (numba.core.inline_closurecall.InlineWorker.inline_ir). Every
block refers to the function's one Scope, which holds all of its variables, so every
block's copy copies all the variables again: blocks x variables objects (numba issue #8989,
numba-cuda issue #688). With this, compiling conv2d_backward and its inlined helpers makes
about a quarter of the deepcopy calls, and numba's inline pass takes a noticeably smaller
part of a cold compile.

install() gives inline_closurecall a `copy` module whose deepcopy shares one memo between
consecutive blocks of one scope: each block is copied as deeply as before, and the blocks
of a copy share one copy of the scope, as the original's share the original. A block of
another scope, or one this memo has copied already (numba copies an IR twice per inlining,
the second time from the first copy), starts a new memo. Everything else goes to `copy`.
"""
import copy

from numba.core import inline_closurecall, ir


class _BlockCopier:
    def __init__(self):
        self._scope, self._memo = None, {}

    def deepcopy(self, x, memo=None):
        if memo is not None or not isinstance(x, ir.Block):
            return copy.deepcopy(x, memo)
        if x.scope is not self._scope or id(x) in self._memo:
            self._scope, self._memo = x.scope, {}
        return copy.deepcopy(x, self._memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def install() -> bool:
    """Once per process, before the first compile; leaves a numba that no longer imports
    `copy` in inline_closurecall as it is. Whether the copier is in place."""
    if getattr(inline_closurecall, "copy", None) is copy:
        inline_closurecall.copy = _BlockCopier()
    return isinstance(getattr(inline_closurecall, "copy", None), _BlockCopier)
