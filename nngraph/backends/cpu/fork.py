"""The compile worker as a fork of this process (compiler.py's Worker uses it where it can),
with the parts of subprocess.Popen that Worker uses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
import weakref


class Forked:
    """The worker as a fork of this process, for the parts of subprocess.Popen that Worker
    uses. Forked, it starts with numba imported and set up (a new Python process spends
    over a second on that before it can take its share), and first compiles the BLAS
    products of `products` (marked done in `claims`). Only forked while this process runs
    one Python thread, so that no lock another thread holds is copied into the child held."""

    def __init__(self, out, errors, products, claims):
        read, write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:                       # the worker
            status = 1
            try:
                os.close(write)
                _drop_other_jobs()
                os.dup2(out.fileno(), 1)
                os.dup2(errors.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", closefd=False)
                from . import compile_worker
                failed = compile_worker.compile_products(products, claims, sys.stdout,
                                                         sys.stderr)
                with open(read, "rb") as job:
                    status = compile_worker.compile_job(job.read(), sys.stdout, sys.stderr)
                status = status or (1 if failed else 0)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        os.close(read)
        self.stdin, self.returncode = open(write, "wb"), None
        JOB_PIPES.add(self.stdin)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

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


JOB_PIPES: weakref.WeakSet = weakref.WeakSet()
"""The job pipes of this process's workers, where it writes their calls."""


def _drop_other_jobs() -> None:
    """In a new fork: close the copies of the other workers' job pipes that the fork
    brought. A worker reads its job to the end of its pipe, which comes only once every
    copy of the pipe's writing end is closed: a fork that kept one would hold that worker
    (and the process waiting for it) until it exits itself (a model compiled, then frozen
    before its first run: two workers at once)."""
    for pipe in list(JOB_PIPES):
        if not pipe.closed:
            try:
                os.close(pipe.fileno())
            except OSError:
                pass


def close_job(proc) -> None:
    try:
        proc.stdin.close()
    except OSError:
        pass
