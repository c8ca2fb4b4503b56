"""Compile a CPU program's kernels ahead of their first call, on two cores when there are two.

Numba compiles a kernel the first time it is called, one kernel after another, on one core:
LeNet-5's train, evaluate and predict need about 20 compiled functions, several seconds of
compile. Here the calls a run would make are recorded first (the drivers
run once over batch-of-one buffers with every kernel replaced by a recorder), and then the
kernels are compiled for exactly those argument types by this process and a second one (a
fork of this one, else `python -m nngraph.backends.cpu.compile_worker`), both writing numba's
on-disk cache. The two take the calls from one list, costliest first, each taking the next
one as it gets free (Claims), so they finish within about one kernel of each other. When the
worker is done this process finds the worker's kernels in that cache, as any later process
would.

NNGRAPH_COMPILE_JOBS sets how many processes compile (1: this one alone); the default is 2
when this process may run on two or more cores. The worker is only an accelerator: if it
cannot start, fails or is slow, whatever it did not compile is compiled here on first call,
exactly as without it. It is not started when the first kernel compiled here came from the
cache: the rest is then in the cache too, and loading it takes well under a second.
"""
from __future__ import annotations

import inspect
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import types
import weakref

import numba
from numba.core import types as nbtypes
from numba.core.dispatcher import Dispatcher

from . import scheduler
from .fork import JOB_PIPES, Forked, close_job
from .module import call_driver
from .claims import PRODUCTS_WAIT_S, Claims  # noqa: F401 - the compile's two processes share them

WORKER_TIMEOUT_S = 600.0
"""How long to wait for the worker before going on without it."""

# Rough cold compile seconds per kernel (both processes compiling), which order the list the
# two processes take calls from, costliest first: the last calls taken are then short, and
# neither process waits long for the other at the end. The convolution and recurrent kernels
# bring large helpers with them (im2col, the gate loops) and cost the most; the spin-wait and
# check kernels are a few lines.
_MODULE_S = {"nngraph.kernels.cpu.conv": 2.5, "nngraph.kernels.cpu.recurrent": 2.5,
             "nngraph.kernels.cpu.sync": 0.08, "nngraph.kernels.cpu.check": 0.08}
_KERNEL_S = {"mean_of_halves": 0.1}
_LIBRARY_S, _GENERATED_S = 0.3, 0.25

def jobs() -> int:
    """Processes that compile: NNGRAPH_COMPILE_JOBS, else 2 when two cores are available."""
    value = os.environ.get("NNGRAPH_COMPILE_JOBS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"NNGRAPH_COMPILE_JOBS={value!r}: give a whole number of "
                             f"processes (1 compiles in this process only)") from None
    return 2 if scheduler.usable_cores() >= 2 else 1


class Recorder:
    """Stands in for a kernel while a driver is recorded: notes the argument types."""

    def __init__(self, dispatcher, calls):
        self.dispatcher, self.calls = dispatcher, calls

    def __call__(self, *args, **kwargs):
        if kwargs:                  # the module's drivers name literal arguments
            args = inspect.signature(self.dispatcher.py_func).bind(*args, **kwargs).args
        self.calls.append((self.dispatcher, tuple(numba.typeof(a) for a in args)))
        return 0.0


class _Namespace:
    """A kernel module as a driver sees it, its kernels replaced (looked up once each)."""

    def __init__(self, module, replace):
        self._module, self._replace = module, replace

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if isinstance(value, Dispatcher):
            value = self._replace(value)
        setattr(self, name, value)
        return value


def with_kernels(driver, replace):
    """`driver` (a generated train/evaluate/predict function) with each kernel it names,
    globally or as module.kernel, replaced by replace(kernel)."""
    names = {}
    for name, value in driver.__globals__.items():
        if isinstance(value, Dispatcher):
            value = replace(value)
        elif isinstance(value, types.ModuleType) and value.__name__.startswith("nngraph."):
            value = _Namespace(value, replace)
        names[name] = value
    return types.FunctionType(driver.__code__, names, driver.__name__)


class _Runtime:
    """`R` of a recorded driver: reference rules run nothing."""

    def forward(self, n, xs, out):
        pass

    def loss(self, n, xs):
        return 0.0

    def backward(self, n, xs, y, gy, targets, pgrads):
        pass


def record(driver, views: dict, calls: list) -> None:
    """Run `driver` (a generated train/evaluate/predict function) over `views` with each
    kernel it calls replaced by a Recorder appending (dispatcher, argument types) to calls.
    Should the driver do something a recording cannot (it never has), the calls recorded
    so far stand and the rest compile on first use, as without a recording."""
    try:
        call_driver(with_kernels(driver, lambda d: Recorder(d, calls)), views, _Runtime())
    except Exception:           # noqa: BLE001 - only an accelerator; see the docstring
        pass


def _where(dispatcher) -> tuple[str, str]:
    fn = dispatcher.py_func
    return fn.__module__, fn.__qualname__


def _cost(dispatcher) -> float:
    if hasattr(dispatcher, "COMPILE_S"):        # a task of kernels/cpu/team.py
        return dispatcher.COMPILE_S
    module = dispatcher.py_func.__module__
    if module.startswith("nngraph.kernels."):
        return _KERNEL_S.get(dispatcher.py_func.__name__, _MODULE_S.get(module, _LIBRARY_S))
    return _GENERATED_S


def _compiled_here(dispatcher, sig) -> bool:
    return tuple(sig) in dispatcher.overloads


def _calls_gemm(dispatcher) -> bool:
    """Does the kernel's own code name gemm (so that compiling it binds a BLAS product)?"""
    return any(name in ("gemm", "gemm_serial") for name in dispatcher.py_func.__code__.co_names)


def _product_kinds(calls) -> set:
    """The BLAS products ('s', 'd') that compiling `calls` binds and this process has not:
    the dtype of the first float array argument of each kernel that calls gemm."""
    from ...kernels.cpu import blas
    kinds = set()
    for dispatcher, sig in calls:
        if not _calls_gemm(dispatcher):
            continue
        floats = [a.dtype for a in sig if isinstance(a, nbtypes.Array)
                  and a.dtype in (nbtypes.float32, nbtypes.float64)]
        if floats:
            kinds.add("s" if floats[0] == nbtypes.float32 else "d")
    return kinds - blas.bound_products()


def compile_calls(calls: list, module_paths: dict, worker: "Worker | None" = None,
                  n_jobs: int | None = None) -> dict:
    """Compile every (dispatcher, argument types) of `calls` not compiled yet in this
    process; `module_paths` maps generated modules' names to their files (for the worker).
    `worker`: one started earlier (see Worker), else one is started here if it pays.
    Returns a report: {"jobs", "here": [(kernel, seconds)], "worker": [(kernel, seconds)],
    "worker_s" (from its start to its end), "worker_error", and with a worker "worker_start"
    ("fork" or "python": how it was started)}."""
    n_jobs = jobs() if n_jobs is None else n_jobs
    todo = list({(id(d), s): (d, s) for d, s in calls if not _compiled_here(d, s)}.values())
    report = {"jobs": 1, "here": [], "worker": [], "worker_s": 0.0, "worker_error": None}
    todo.sort(key=lambda c: -_cost(c[0]))
    if n_jobs < 2 or len(todo) < 2:
        if worker is not None:
            worker.close()
        _compile(todo, report)
        return report
    if worker is None:
        # Nothing says this is a first compile: try the cheapest kernel here first. From the
        # cache, the rest is there too and loads quickly here; else start a worker now.
        if _compile(todo[-1:], report) == "cache":
            _compile(todo[:-1], report)
            return report
        todo, worker = todo[:-1], Worker()
    claims, kinds = worker.claims, _product_kinds(todo)
    theirs = kinds & set(worker.products)       # the worker started on those when it forked
    try:
        if not worker.send(todo, module_paths, report, claims, sorted(kinds)):
            worker.close()
            _compile(todo, report)
            return report
        try:
            from ...kernels.cpu import blas
            for kind in sorted(kinds - theirs):
                t0 = time.perf_counter()
                blas.bind_product(kind)
                report["here"].append((f"nngraph.kernels.cpu.blas.product_{kind}",
                                       round(time.perf_counter() - t0, 3)))
                claims.set_products(kind)
            # The worker's products: this process loads them from the cache when it first
            # compiles a kernel that calls gemm; or compiles them then, should the worker
            # have died or be too slow.
            deadline = time.monotonic() + PRODUCTS_WAIT_S
            gemm = [_calls_gemm(d) for d, _ in todo]
            for index in claims.each(gemm, lambda: claims.products(kinds) or not worker.alive()
                                     or time.monotonic() > deadline):
                _compile([todo[index]], report)
        except BaseException:   # a kernel that does not compile: no worker left behind
            worker.kill()
            raise
        worker.wait(report)
    finally:
        claims.remove()
    return report


def _compile(calls, report) -> str:
    """Compile calls in this process; returns 'cache' when the first one was loaded from
    numba's cache, else 'compiled'."""
    how = "compiled"
    for i, (dispatcher, sig) in enumerate(calls):
        misses = sum(dispatcher.stats.cache_misses.values())
        t0 = time.perf_counter()
        dispatcher.compile(sig)
        if i == 0 and sum(dispatcher.stats.cache_misses.values()) == misses:
            how = "cache"
        report["here"].append((".".join(_where(dispatcher)), round(time.perf_counter() - t0, 3)))
    return how


class Worker:
    """The second compiling process. Started as soon as this process knows a network is
    new, it waits for the calls on stdin and imports the kernels once they come. It is a
    fork of this process where it can be (Forked), else a new Python process that sets
    numba up meanwhile. A fork compiles the BLAS products of the kinds in `products` ('s',
    'd') before it waits: `products` holds those it does. Dropped without calls (closed, or
    garbage-collected), it exits."""

    def __init__(self, products=()):
        self.proc, self.started = None, time.perf_counter()
        self.errors, self.out = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.claims, self.products = Claims(), ()
        try:
            if hasattr(os, "fork") and threading.active_count() == 1:
                self.proc = Forked(self.out, self.errors, tuple(products), self.claims)
                self.products = tuple(products)
            else:
                # this process's import path, so that the worker imports the same nngraph
                # (and the generated modules' imports resolve) however this one was started
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "nngraph.backends.cpu.compile_worker"],
                    stdin=subprocess.PIPE, stdout=self.out, stderr=self.errors, env=env)
                JOB_PIPES.add(self.proc.stdin)
        except OSError as exc:
            self.failure = f"could not start: {exc}"
        else:
            self.failure = None
            weakref.finalize(self, close_job, self.proc)

    def send(self, calls, module_paths, report, claims: Claims | None = None,
             kinds=()) -> bool:
        """Give the worker the calls (all of them, or with `claims` those it takes first,
        those calling gemm once the products of `kinds` are in the cache); False (and
        report["worker_error"]) if it cannot take them. The job is a few KB, which the pipe
        holds (64 KiB on Linux) while a forked worker is still compiling its products."""
        if self.proc is not None and self.failure is None:
            job = {"modules": module_paths, "calls": [(*_where(d), tuple(s)) for d, s in calls]}
            if claims is not None:
                job["claims"], job["kinds"] = claims.path, list(kinds)
                job["gemm"] = [_calls_gemm(d) for d, _ in calls]
            try:
                self.proc.stdin.write(pickle.dumps(job))
                self.proc.stdin.close()
                report["jobs"] = 2
                report["worker_start"] = "fork" if isinstance(self.proc, Forked) else "python"
                return True
            except OSError as exc:
                self.failure = f"could not send the job: {exc}"
        report["worker_error"] = self.failure
        return False

    def wait(self, report) -> None:
        proc = self.proc
        try:
            proc.wait(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            report["worker_error"] = f"still compiling after {WORKER_TIMEOUT_S:.0f} s; stopped"
        with self.errors, self.out:
            self.errors.seek(0)
            text = self.errors.read().decode(errors="replace").strip()
            self.out.seek(0)
            for line in self.out.read().decode(errors="replace").splitlines():
                name, _, seconds = line.rpartition(" ")
                report["worker"].append((name, float(seconds)))
        if report["worker_error"] is None and (proc.returncode != 0 or text):
            report["worker_error"] = text[-2000:] or f"exit status {proc.returncode}"
        report["worker_s"] = round(time.perf_counter() - self.started, 3)

    def alive(self) -> bool:
        """Is the worker still running?"""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Stop the worker, whatever it is doing."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        """Let the worker go without a share."""
        if self.proc is not None:
            close_job(self.proc)
            if isinstance(self.proc, Forked):  # no share: nothing left worth its time
                self.proc.kill()
                self.proc.wait()
        self.claims.remove()
        self.errors.close()
        self.out.close()
