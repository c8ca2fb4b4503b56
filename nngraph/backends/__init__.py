"""Backends run a Program: `reference` (numpy interpreter, the oracle), `cpu` (fused Numba),
`cuda` (numba-cuda)."""
from __future__ import annotations

from ..errors import NNGraphError

BACKENDS = ("reference", "cpu", "cuda")


def executor(program, backend: str, dtype):
    if backend == "reference":
        from .reference import ReferenceExecutor
        return ReferenceExecutor(program, dtype)
    if backend == "cpu":
        try:
            from .cpu import CPUExecutor
        except ImportError:
            import sys
            print("nngraph: the fused cpu backend is not built yet; running on the "
                  "reference backend", file=sys.stderr)
            from .reference import ReferenceExecutor
            return ReferenceExecutor(program, dtype)
        return CPUExecutor(program, dtype)
    if backend in BACKENDS:
        raise NNGraphError(f"the '{backend}' backend is not available in this build of "
                           "nngraph yet; use backend='reference'")
    raise NNGraphError(f"unknown backend '{backend}': choose from {', '.join(BACKENDS)}")
