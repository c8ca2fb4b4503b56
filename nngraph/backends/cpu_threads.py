"""The CPU backend's second thread: runs one job at a time beside the calling thread.

`Second.run_beside(job, arg, own)` hands `job(arg)` to the second thread, runs `own()` here,
and returns both results once both are done. The hand-over goes through atomic flags that
both threads spin on with the GIL released (kernels/cpu/sync.py): sleeping on a lock, the
second thread took 0.1-0.2 ms to wake on the 2-core development VM, a tenth of a LeNet-5
training step. After each job the second thread keeps spinning (SPIN_TRIES: 1.5 ms on that
VM, one core busy; the next step of a training loop usually comes sooner), then sleeps on
an event until the next job.
"""
from __future__ import annotations

import os
import threading

import numpy as np

SPIN_TRIES = 100_000
"""Tries (a pause instruction each, ~15 ns on the development VM) the second thread spins
for after a job before it sleeps."""


class Second:
    def __init__(self):
        from ..kernels.cpu import sync
        self.sync = sync
        self.flags = np.zeros(2, np.int64)      # [0]: jobs handed over, [1]: jobs done
        self.job = self.result = self.error = None
        self.wake = threading.Event()
        self.lock = threading.Lock()            # one caller at a time
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._loop, name="nngraph-second", daemon=True)
        self.thread.start()

    def _loop(self):
        sync, flags, seen = self.sync, self.flags, 0
        while True:
            count = sync.wait_change(flags, 0, seen, SPIN_TRIES)
            if count == seen:                   # nothing came while spinning: sleep
                self.wake.wait()
                self.wake.clear()
                continue
            seen = count
            job, arg = self.job
            try:
                self.result, self.error = job(arg), None
            except BaseException as exc:        # handed back to the caller
                self.result, self.error = None, exc
            sync.publish(flags, 1, count)

    def run_beside(self, job, arg, own):
        """(own(), job(arg)), job on the second thread; the first exception of either is
        raised once both are done."""
        with self.lock:
            count = int(self.flags[0]) + 1
            self.job = (job, arg)
            self.sync.publish(self.flags, 0, count)
            self.wake.set()
            try:
                mine = own()
            finally:                            # the job's arena is reused by the next call
                while self.sync.wait_change(self.flags, 1, count - 1, SPIN_TRIES) != count:
                    if not self.thread.is_alive():
                        raise RuntimeError("nngraph's second thread has died")
            if self.error is not None:
                raise self.error
            return mine, self.result


def typical_calls() -> list:
    """(kernel, example arguments) of the hand-over, for compiling it ahead of first use."""
    from ..kernels.cpu import sync
    flags = np.zeros(2, np.int64)
    return [(sync.wait_change, (flags, 0, 0, 1)), (sync.publish, (flags, 0, 0))]


_second = None


def second() -> Second:
    """The process's second thread, started on first use (again in a forked child, which
    inherits the object but not the thread)."""
    global _second
    if _second is None or _second.pid != os.getpid():
        _second = Second()
    return _second
