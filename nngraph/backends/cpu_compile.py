"""Compile a CPU program's kernels ahead of their first call, on two cores when there are two.

Numba compiles a kernel the first time it is called, one kernel after another, on one core:
LeNet-5's train, evaluate and predict need about 20 compiled functions, 8 s of compile on the
2-core development machine. Here the calls a run would make are recorded first (the drivers
run once over batch-of-one buffers with every kernel replaced by a recorder), and then the
kernels are compiled for exactly those argument types: part in this process and part in a
second process (a fork of this one, else `python -m nngraph.backends.compile_worker`), both
writing numba's on-disk cache. When the worker is done this process finds its share in that
cache, as any later process would.

NNGRAPH_COMPILE_JOBS sets how many processes compile (1: this one alone); the default is 2
when this process may run on two or more cores. The worker is only an accelerator: if it
cannot start, fails or is slow, whatever it did not compile is compiled here on first call,
exactly as without it. It is not started when the first kernel compiled here came from the
cache: the rest is then in the cache too, and loading it takes well under a second.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
import weakref

import numba
from numba.core.dispatcher import Dispatcher

WORKER_TIMEOUT_S = 600.0
"""How long to wait for the worker before going on without it."""

# Rough cold compile seconds per kernel (2-core machine, both processes compiling), for
# sharing the work out: the convolution and recurrent kernels bring large helpers with them
# (im2col, the gate loops); the spin-wait and check kernels are a few lines (LeNet-5: 0.04-
# 0.09 s each, against 0.25-0.32 s for the pooling backward and the optimizer). Per kernel
# where one module's differ: LeNet-5's convolution backward 2.7-3.4 s, its forward 2.4-3.4
# s, the BLAS products 1.0-1.4 s, the mean of two halves' gradients 0.1 s (with these
# estimates instead of 2.5 s for both convolutions and 0.8 s for the products, cold LeNet-5
# compiles took 4.8-6.8 s against 4.9-8.0 s in six paired runs). The worker is started while
# this process generates the module, so it is ready when its share comes: no head start is
# counted.
_MODULE_S = {"nngraph.kernels.cpu.conv": 2.5, "nngraph.kernels.cpu.recurrent": 2.5,
             "nngraph.kernels.cpu.sync": 0.08, "nngraph.kernels.cpu.check": 0.08}
_KERNEL_S = {"conv2d_forward": 2.4, "conv2d_backward": 3.0, "mean_of_halves": 0.1}
_LIBRARY_S, _GENERATED_S = 0.3, 0.25
_PRODUCTS_S = 1.1           # the float32 BLAS product and its small-matrix loop (blas.py)


def jobs() -> int:
    """Processes that compile: NNGRAPH_COMPILE_JOBS, else 2 when two cores are available."""
    value = os.environ.get("NNGRAPH_COMPILE_JOBS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"NNGRAPH_COMPILE_JOBS={value!r}: give a whole number of "
                             f"processes (1 compiles in this process only)") from None
    return 2 if cores() >= 2 else 1


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class Recorder:
    """Stands in for a kernel while a driver is recorded: notes the argument types."""

    def __init__(self, dispatcher, calls):
        self.dispatcher, self.calls = dispatcher, calls

    def __call__(self, *args):
        self.calls.append((self.dispatcher, tuple(numba.typeof(a) for a in args)))
        return 0.0


class _Module:
    """A kernel module as a recorded driver sees it: its kernels are recorders."""

    def __init__(self, module, calls):
        self._module, self._calls = module, calls

    def __getattr__(self, name):
        value = getattr(self._module, name)
        return Recorder(value, self._calls) if isinstance(value, Dispatcher) else value


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
    names = {}
    for name, value in driver.__globals__.items():
        if isinstance(value, Dispatcher):
            names[name] = Recorder(value, calls)
        elif isinstance(value, types.ModuleType) and value.__name__.startswith("nngraph."):
            names[name] = _Module(value, calls)
        else:
            names[name] = value
    try:
        types.FunctionType(driver.__code__, names, driver.__name__)(views, _Runtime())
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


def _products_bound() -> bool:
    from ..kernels.cpu import blas
    return bool(blas.bound_products())


def _compiled_here(dispatcher, sig) -> bool:
    return tuple(sig) in dispatcher.overloads


def _calls_gemm(dispatcher) -> bool:
    """Does the kernel's own code name gemm (so that compiling it binds a BLAS product)?"""
    return any(name in ("gemm", "gemm_serial") for name in dispatcher.py_func.__code__.co_names)


def share(calls: list, products_bound: bool = True) -> tuple[list, list]:
    """(here, worker): distinct calls split so that both finish at about the same time,
    costliest first, each to the process with less to do. A convolution's forward and
    backward go to different processes although both then compile the im2col and BLAS
    helpers: the two halves finish sooner than both kernels in one process.

    When the BLAS products are not compiled yet (`products_bound` False), this process
    compiles them with its first kernel that calls gemm, and the worker starts with the
    kernels that do not: it finds them in the cache when it reaches its first that does."""
    loads = {"here": 0.0 if products_bound or not any(_calls_gemm(d) for d, _ in calls)
             else _PRODUCTS_S, "worker": 0.0}
    parts: dict = {"here": [], "worker": []}
    for dispatcher, sig in sorted(calls, key=lambda c: -_cost(c[0])):
        side = min(loads, key=loads.get)
        parts[side].append((dispatcher, sig))
        loads[side] += _cost(dispatcher)
    if not products_bound:
        parts["worker"].sort(key=lambda c: _calls_gemm(c[0]))
    return parts["here"], parts["worker"]


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
    here, away = share(todo, _products_bound()) if n_jobs > 1 and todo else (todo, [])
    if away and worker is None:
        # Nothing says this is a first compile: try the cheapest kernel here first. From the
        # cache, the rest is there too and loads quickly here; else start a worker now.
        probe = min(range(len(here)), key=lambda i: _cost(here[i][0])) if here else None
        if probe is not None:
            first, here = [here[probe]], here[:probe] + here[probe + 1:]
            if _compile(first, report) == "cache":
                here, away = here + away, []
        if away:
            worker = Worker()
    if worker is not None and (not away or not worker.send(away, module_paths, report)):
        worker.close()
        here, away, worker = here + away, [], None
    try:
        _compile(here, report)
    except BaseException:       # a kernel that does not compile: no worker left behind
        if worker is not None:
            worker.kill()
        raise
    if worker is not None:
        worker.wait(report)
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
    new, it waits for its share of the calls on stdin and imports the kernels once that
    comes (see share() for the BLAS products). It is a fork of this process where it can be
    (_Forked), else a new Python process that sets numba up meanwhile. Dropped without a
    share (closed, or garbage-collected), it exits."""

    def __init__(self):
        self.proc, self.started = None, time.perf_counter()
        self.errors, self.out = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        try:
            if hasattr(os, "fork") and threading.active_count() == 1:
                self.proc = _Forked(self.out, self.errors)
            else:
                # this process's import path, so that the worker imports the same nngraph
                # (and the generated modules' imports resolve) however this one was started
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "nngraph.backends.compile_worker"],
                    stdin=subprocess.PIPE, stdout=self.out, stderr=self.errors, env=env)
        except OSError as exc:
            self.failure = f"could not start: {exc}"
        else:
            self.failure = None
            weakref.finalize(self, _close, self.proc)

    def send(self, calls, module_paths, report) -> bool:
        """Give the worker its share; False (and report["worker_error"]) if it cannot take
        it."""
        if self.proc is not None and self.failure is None:
            job = {"modules": module_paths, "calls": [(*_where(d), tuple(s)) for d, s in calls]}
            try:
                self.proc.stdin.write(pickle.dumps(job))
                self.proc.stdin.close()
                report["jobs"] = 2
                report["worker_start"] = "fork" if isinstance(self.proc, _Forked) else "python"
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

    def kill(self) -> None:
        """Stop the worker, whatever it is doing."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        """Let the worker go without a share."""
        if self.proc is not None:
            _close(self.proc)
            if isinstance(self.proc, _Forked):  # no share: it ends at once; reap it
                try:
                    self.proc.wait(timeout=10.0)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.errors.close()
        self.out.close()


class _Forked:
    """The worker as a fork of this process, for the parts of subprocess.Popen that Worker
    uses. Forked, it starts with numba imported and set up (a new Python process spends
    ~1.2 s on that before it can take its share). Only forked while this process runs one
    Python thread, so that no lock another thread holds is copied into the child held."""

    def __init__(self, out, errors):
        read, write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:                       # the worker
            status = 1
            try:
                os.close(write)
                os.dup2(out.fileno(), 1)
                os.dup2(errors.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", closefd=False)
                from . import compile_worker
                with open(read, "rb") as job:
                    status = compile_worker.compile_job(job.read(), sys.stdout, sys.stderr)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        os.close(read)
        self.stdin, self.returncode = open(write, "wb"), None

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("compile worker", timeout)
            else:
                time.sleep(0.005)
        return self.returncode

    def kill(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _close(proc) -> None:
    try:
        proc.stdin.close()
    except OSError:
        pass
