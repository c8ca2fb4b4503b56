"""The hand-written kernel modules, found by file: each public module of nngraph.kernels.cpu
(kernels/cpu/<module>.py in the tree) is imported by the generated code that calls it as
`_<module>`, so that a lowering calls '_conv.conv2d_forward' or '_softmax.softmax_forward'
and a new module needs no entry in any table."""
from __future__ import annotations

import importlib
import pkgutil
import re
from functools import lru_cache

PACKAGE = "nngraph.kernels.cpu"

_CALL = re.compile(r"\b_([a-z]\w*)\.")
_GEMM = re.compile(r"\bgemm(_packed)?\(")


def alias(module: str) -> str:
    """The name generated code imports kernel module `module` as."""
    return "_" + module


@lru_cache(maxsize=None)
def modules(package: str = PACKAGE) -> frozenset:
    """The public kernel modules' names in `package` (found without importing them: conv
    and recurrent take tens of milliseconds to import, and a network imports only those it
    calls). The CUDA backend's are those of nngraph.kernels.cuda."""
    path = importlib.import_module(package).__path__
    return frozenset(info.name for info in pkgutil.iter_modules(path)
                     if not info.name.startswith("_"))


def used(code: str, package: str = PACKAGE) -> list:
    """The kernel modules of `package` that generated `code` calls a function of, by name."""
    return sorted(m for m in set(_CALL.findall(code)) if m in modules(package))


def load(module: str, package: str = PACKAGE):
    return importlib.import_module(f"{package}.{module}")


def function(name: str, package: str = PACKAGE):
    """Hand-written kernel `name` ('_conv.conv2d_forward') of `package`; None if there is
    none."""
    prefix, _, attr = name.partition(".")
    module = prefix[1:] if prefix.startswith("_") else None
    if not attr or module not in modules(package):
        return None
    return getattr(load(module, package), attr, None)


@lru_cache(maxsize=None)
def module_calls_gemm(module: str) -> bool:
    """Do kernel module `module`'s kernels multiply through the BLAS binding (kernels/cpu/
    blas.py)? Those that do import its gemm."""
    return hasattr(load(module), "gemm")


def calls_gemm(code: str) -> bool:
    """Do the kernels of generated `code` call gemm, themselves or through a kernel module?
    (Then compiling them binds a BLAS product, see compiler.py.)"""
    return _GEMM.search(code) is not None or any(map(module_calls_gemm, used(code)))
