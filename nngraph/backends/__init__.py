"""Backends run a Program: `reference` (numpy interpreter, the oracle), `cpu` (fused Numba),
`cuda` (numba-cuda)."""
from __future__ import annotations

from ..errors import NNGraphError

BACKENDS = ("reference", "cpu", "cuda")
DTYPES = ("float32", "float64")      # what a model computes in


def executor(program, backend: str, dtype, frozen: bool = False, device: int | None = None):
    """The executor of `program` on `backend`; `frozen`: one that only predicts, on
    parameters that never change after it has them (Model.freeze): the CPU backend then
    packs its dense layers' weights. `device`: the GPU of backend 'cuda'."""
    if device is not None and backend != "cuda":
        raise NNGraphError(f"device={device!r} picks a GPU of backend 'cuda'; backend "
                           f"'{backend}' has none to pick")
    if backend == "reference":
        from .reference import ReferenceExecutor
        return ReferenceExecutor(program, dtype)
    if backend == "cpu":
        from .cpu import CPUExecutor
        return CPUExecutor(program, dtype, frozen)
    if backend == "cuda":
        from . import cuda
        return cuda.open_executor(program, dtype, frozen, 0 if device is None else device)
    raise NNGraphError(f"unknown backend '{backend}': choose from {', '.join(BACKENDS)}")


def codegen_class(backend: str):
    """The code generator of `backend` ('cpu' or 'cuda'): what `nngraph compile` writes and
    `nngraph viz --fused` draws (no GPU is needed to generate CUDA code)."""
    if backend == "cuda":
        from .cuda.codegen import CUDACodegen
        return CUDACodegen
    if backend == "cpu":
        from .cpu.codegen import CPUCodegen
        return CPUCodegen
    raise NNGraphError(f"backend '{backend}' generates no code: choose cpu or cuda")
