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
        from .cpu import CPUExecutor
        return CPUExecutor(program, dtype)
    if backend == "cuda":
        raise NNGraphError("the 'cuda' backend is not available in this build of nngraph "
                           "yet; use backend='cpu'")
    raise NNGraphError(f"unknown backend '{backend}': choose from {', '.join(BACKENDS)}")
