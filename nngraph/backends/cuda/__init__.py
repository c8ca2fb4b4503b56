"""The CUDA backend (numba-cuda): generated kernels and drivers (codegen.py, lower/), the
device kernels of kernels/cuda, and the executor that runs them (executor.py); here, what
it needs to run and the one-line answer when that is missing (docs/cuda.md)."""
from __future__ import annotations

import os

from ...errors import NNGraphError

INSTALL = "pip install 'nngraph[cuda]'"


def device_status() -> tuple[bool, str]:
    """(usable, what runs the kernels or why nothing can): a GPU numba-cuda can reach, or
    numba's simulator when NUMBA_ENABLE_CUDASIM=1 was set before numba was imported."""
    try:
        from numba import cuda
    except ImportError as exc:                       # pragma: no cover - numba is required
        return False, f"numba's CUDA target cannot be imported ({exc})"
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and cuda.is_available():
        return True, "numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    try:
        if cuda.is_available():
            gpu = cuda.get_current_device()
            return True, f"{gpu.name.decode() if isinstance(gpu.name, bytes) else gpu.name}"
    except Exception as exc:                         # noqa: BLE001 - a driver's own errors
        return False, f"the CUDA driver failed: {exc}"
    return False, "no CUDA GPU and driver found"


def require() -> str:
    """What will run CUDA kernels; a one-line NNGraphError naming what is missing if nothing
    can."""
    usable, what = device_status()
    if not usable:
        raise NNGraphError(
            f"backend 'cuda' needs an NVIDIA GPU: {what}. On a machine with one, install the "
            f"CUDA extra ({INSTALL}); to try the backend without one, set "
            "NUMBA_ENABLE_CUDASIM=1 (numba's simulator: correct, slow, for tests)")
    return what


def select(device) -> str:
    """Make GPU `device` (numba's numbering) the current one; what it is. A one-line
    NNGraphError for a device that is not there."""
    what = require()
    if isinstance(device, bool) or not isinstance(device, int) or device < 0:
        raise NNGraphError(f"device must be a GPU's number (0, 1, ...), got {device!r}")
    from numba import cuda
    count = len(cuda.gpus)
    if device >= count:
        raise NNGraphError(f"device={device}: this machine has {count} GPU"
                           f"{'s' * (count != 1)} for backend 'cuda' ({what}), numbered "
                           f"from 0")
    if device != 0 or os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        cuda.select_device(device)
    return what


def open_executor(program, dtype, frozen: bool = False, device: int = 0):
    """The CUDA executor of `program` on GPU `device` (frozen copies run as any other on
    this backend)."""
    what = select(device)
    from .executor import CUDAExecutor
    return CUDAExecutor(program, dtype, what, device)
