"""The second process of a parallel compile (see compiler.py).

Reads a pickled job from stdin (or, forked, from a pipe): {"modules": {generated module
name: file}, "calls": [(module, qualified name, argument types), ...]}, imports the kernels
and compiles each call into numba's on-disk cache, printing "module.kernel seconds" for each.
With "claims" (a directory, see claims.Claims), "kinds" (the BLAS products the calls
bind) and "gemm" (per call: does it bind them?), it compiles only the calls it takes before
the parent does, and takes none that binds the products until they are in the cache. A
forked worker may compile products before it reads its job (compile_products).
A call that fails to compile is reported on stderr and skipped: the parent compiles it
again on first use and raises the error there, where the user sees it.
"""
from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
import time


def _module(name: str, paths: dict):
    if name in sys.modules:
        return sys.modules[name]
    if name in paths:
        spec = importlib.util.spec_from_file_location(name, paths[name])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name)


def main() -> int:
    # Numba's own set-up first, while the parent writes the generated module and records
    # its calls (an empty stdin: it had nothing for us). The kernel modules come after the
    # job.
    from numba.core.registry import cpu_target
    cpu_target.typing_context.refresh()
    cpu_target.target_context.refresh()
    return compile_job(sys.stdin.buffer.read(), sys.stdout, sys.stderr)


def compile_job(data: bytes, out, err) -> int:
    """Compile the pickled job `data` (nothing when it is empty), one line per kernel on
    `out`, failures on `err`; returns the exit status."""
    if not data:
        return 0
    job = pickle.loads(data)
    failed = 0
    for module, qualname, sig in _taken(job):
        try:
            target = _module(module, job["modules"])
            for part in qualname.split("."):
                target = getattr(target, part)
            t0 = time.perf_counter()
            target.compile(sig)
            print(f"{module}.{qualname} {time.perf_counter() - t0:.3f}", file=out, flush=True)
        except Exception as exc:            # reported; the parent compiles it on first use
            failed += 1
            print(f"{module}.{qualname}{sig}: {type(exc).__name__}: {exc}", file=err,
                  flush=True)
    return 1 if failed else 0


def compile_products(kinds, claims, out, err) -> int:
    """Compile (or load from numba's cache) the BLAS product of each kind ('s', 'd'), one
    line each on `out`, and mark each done in `claims`, compiled or not (a failure is
    reported on `err`, and the parent then compiles it, where the error reaches the user).
    Returns the number of failures."""
    failed = 0
    for kind in kinds:
        try:
            from ...kernels.cpu import blas
            t0 = time.perf_counter()
            blas.bind_product(kind)
            print(f"nngraph.kernels.cpu.blas.product_{kind} {time.perf_counter() - t0:.3f}",
                  file=out, flush=True)
        except Exception as exc:            # reported; the parent compiles it on first use
            failed += 1
            print(f"the BLAS product {kind}: {type(exc).__name__}: {exc}", file=err, flush=True)
        finally:
            claims.set_products(kind)
    return failed


def _taken(job):
    """The job's calls this process is to compile, each as it is taken."""
    calls = job["calls"]
    if "claims" not in job:
        yield from calls
        return
    from .claims import PRODUCTS_WAIT_S, Claims
    claims, kinds = Claims(job["claims"]), job.get("kinds", [])
    deadline = time.monotonic() + PRODUCTS_WAIT_S
    for index in claims.each(job["gemm"], lambda: claims.products(kinds)
                             or time.monotonic() > deadline):
        yield calls[index]


if __name__ == "__main__":
    sys.exit(main())
