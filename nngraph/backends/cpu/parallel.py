"""The CPU backend's second thread: runs one job at a time beside the calling thread.

`Second.run_beside(job, arg, own)` hands `job(arg)` to the second thread, runs `own()` here,
and returns both results once both are done. The hand-over goes through atomic flags that
both threads spin on with the GIL released (kernels/cpu/sync.py): sleeping on a lock, the
second thread takes a tenth of a millisecond or more to wake, about a tenth of a LeNet-5
training step. Spinning is bounded in time, not in tries (what a `pause` takes differs
several-fold between CPUs): after a job the second thread spins IDLE_SPIN_S for the
next one, then sleeps on an event; the calling thread spins WAIT_SPIN_S for the job's end,
then sleeps until the second thread wakes it. On a busy machine a spinning thread takes the
core that the thread it waits for needs; the bounds keep that short, and the schedule
(scheduler.py) stops handing work over where it does not pay.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np

from .module import call_driver
from .runtime import set_stream

IDLE_SPIN_S = 300e-6
"""How long the second thread spins for the next job after one before it sleeps: the gap
between the halves of a training loop's steps (the optimizer update, the next batch's
checks) is shorter."""

WAIT_SPIN_S = 200e-6
"""How long the calling thread spins for the second thread's half before it sleeps."""

_tries_per_s = None


def tries_per_second() -> float:
    """Spin tries (sync.wait_change's, a pause instruction each) per second on this CPU,
    measured once."""
    global _tries_per_s
    if _tries_per_s is None:
        from ...kernels.cpu import sync
        flags, best = np.zeros(1, np.int64), float("inf")
        sync.wait_change(flags, 0, 0, 10)       # compiled (or loaded) before it is timed
        for _ in range(3):
            start = time.perf_counter()
            sync.wait_change(flags, 0, 0, 20_000)
            best = min(best, time.perf_counter() - start)
        _tries_per_s = 20_000 / max(best, 1e-6)
    return _tries_per_s


class Second:
    def __init__(self):
        from ...kernels.cpu import sync
        self.sync = sync
        per_s = tries_per_second()
        self.idle_tries = max(1, int(IDLE_SPIN_S * per_s))
        self.wait_tries = max(1, int(WAIT_SPIN_S * per_s))
        self.flags = np.zeros(2, np.int64)      # [0]: jobs handed over, [1]: jobs done
        self.job = self.result = self.error = None
        self.wake = threading.Event()           # a job is there (for a sleeping thread)
        self.done = threading.Event()           # the job is done (for a sleeping caller)
        self.lock = threading.Lock()            # one caller at a time
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._loop, name="nngraph-second", daemon=True)
        self.thread.start()

    def _loop(self):
        sync, flags, seen = self.sync, self.flags, 0
        while True:
            count = sync.wait_change(flags, 0, seen, self.idle_tries)
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
            self.done.set()

    def run_beside(self, job, arg, own):
        """(own(), job(arg)), job on the second thread; the first exception of either is
        raised once both are done."""
        with self.lock:
            count = int(self.flags[0]) + 1
            self.job = (job, arg)
            self.done.clear()
            self.sync.publish(self.flags, 0, count)
            self.wake.set()
            try:
                mine = own()
            finally:                            # the job's arena is reused by the next call
                flags, sync = self.flags, self.sync
                # `done` may still be set by the previous job (set after its flag): the
                # flag decides, the event only wakes
                while sync.wait_change(flags, 1, count - 1, self.wait_tries) != count:
                    if not self.done.wait(0.5) and not self.thread.is_alive():
                        raise RuntimeError("nngraph's second thread has died")
                    self.done.clear()
            if self.error is not None:
                raise self.error
            return mine, self.result


def typical_calls() -> list:
    """(kernel, example arguments) of the hand-over, for compiling it ahead of first use."""
    from ...kernels.cpu import sync
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


DENSE_SPLIT_MIN = 128
"""The smallest batch of a network of dense layers that runs as two halves under OpenBLAS:
below it the halves' thinner products and the hand-over cost more than the second core
gives back (tools/results/design-measurements.md)."""


class Halves:
    """CPUExecutor's runs of a batch as two halves at once, this thread and the second (a
    mixin: it reads the executor's program, drivers, arenas and flat gradients)."""

    def _splits(self, mode) -> bool:
        """Does `mode` run as two halves of the batch, one per core? When it pays and is
        exact. It pays for drivers that run convolution or recurrent kernels, whose loops
        keep to one core; networks of dense layers already keep both cores busy in MKL,
        where two one-thread products at once ran no faster than one after the other, but
        not under OpenBLAS, whose products stay on one thread (blas.PER_THREAD): there
        they split from DENSE_SPLIT_MIN samples on (see halves_for). It is
        exact when MKL can be told to stay on the calling thread, the driver calls compiled
        kernels only (the reference rules are not thread-safe), no layer keeps state
        (batchnorm's statistics would be of the half; dropout's and gaussian_noise's random
        numbers are not: each value's is drawn by its index in the whole batch, see
        runtime.set_stream), every loss is a mean over the batch, and what is read after a
        run (outputs, loss inputs) is laid out sample by sample, so that the halves' values
        join along the first axis."""
        if mode not in self.split_modes:
            g, prog = self.program.graph, self.program
            layouts = {b.name: b.layout for b in self.gen.plans[mode][0]}
            one_core = bool(self.gen.calls_modules(mode) & {"conv", "recurrent"})
            self.split_modes[mode] = (
                self.threads >= 2 and not prog.state
                and all(layouts.get(name, "batch") == "batch" for name in self.read_after)
                and (one_core or not self.blas.PER_THREAD)
                and not self.uses_reference[mode]
                and all(g.node(l).attrs.get("reduction", "mean") == "mean"
                        for l in prog.losses))
            self.split_from[mode] = 2 * self.SPLIT_MIN if one_core else DENSE_SPLIT_MIN
        return self.split_modes[mode]

    def halves_for(self, mode, n) -> bool:
        """Does a batch of n samples run as two halves (_splits, from split_from[mode]
        samples on: 2 * SPLIT_MIN, or DENSE_SPLIT_MIN for a network of dense layers)?
        Fixed for each mode and n, so that a batch's numbers never depend on timings."""
        return self._splits(mode) and n >= self.split_from[mode]

    def _run_halves(self, mode, batch, n, seed):
        """The driver on both halves of the batch at once, on this thread and on a second
        one, each with its own arena (and, in training, its own gradients), BLAS on the
        calling thread only. The losses and gradients are means over each half: weighted
        by the halves' sizes they make the mean over the batch. Returns the loss and the
        values read after a run (outputs, loss inputs), joined along the batch."""
        half = n // 2
        if self.second_grads is None:
            self.second_grads = np.zeros_like(self.flat_grads)
            self.second_gviews = {k: self.second_grads[a:b].reshape(self.pviews[k].shape)
                                  for k, (a, b) in self.segments.items()}
        first = {k: v[:half] for k, v in batch.items()}
        views0 = self._buffers(mode, first, 0)
        views1 = self._buffers(mode, {k: v[half:] for k, v in batch.items()}, 1)
        if seed is not None and self.uses_stream[mode]:
            set_stream(views0, seed, 0)
            set_stream(views1, seed, half)
        driver = self._driver(mode, first, views0)

        def run(views):
            self.blas.set_threads(1)
            return call_driver(driver, views, self.runtime)

        if self.wide:
            loss0, loss1 = second().run_beside(run, views1, lambda: run(views0))
        else:                           # a busy machine: the same halves, one after the other
            loss0, loss1 = run(views0), run(views1)
        w0, w1 = half / n, (n - half) / n
        if mode == "train":
            self.optim.mean_of_halves(self.flat_grads, self.second_grads, w0, w1)
        joined = {name: np.concatenate([views0[name], views1[name]])
                  for name in self.read_after if name in views0}
        return w0 * loss0 + w1 * loss1, joined
