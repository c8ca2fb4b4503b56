"""One core or two for a run, chosen by measuring it, so that a busy machine gets one.

A run that can use the second core (two halves of a batch at once, or MKL's threads for a
whole batch's products and the optimizer update) is only faster while that core is free.
On a machine that other processes keep busy, the second thread waits for its turn on a
core and the whole step waits for it: a LeNet-5 step took twice as long on two threads as
on one beside two busy processes. Nothing read before a run says whether the core will be
free during it (the load average is a minute old; the running count in /proc a snapshot),
so each kind of run (mode and batch size) is timed both ways, alternately, and the faster
way is kept until the next check: a few calls of each way every RECHECK_S seconds. The
choice changes speed only, never results: split batches are computed as halves either way
(one after the other on this thread when it is narrow), and a product gives the same bits
on one MKL thread as on two (MKL splits rows and columns among threads, not sums).

The CPU backend takes a Schedule per (mode, batch size) from `Schedules`. NNGRAPH_THREADS
decides instead of measuring: 1, one thread and whole batches; 2, always both cores.
"""
from __future__ import annotations

import math
import os
import time

TRIES = 3
"""Calls of each way in a check; the faster median wins."""

RECHECK_CALLS, RECHECK_S = 32, 0.5
"""A new check comes after at least this many calls and this many seconds."""


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, cut to the CPU quota of its
    cgroup (a container's `--cpus`), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """CPUs' worth of time the cgroup may use (cgroup v2 cpu.max, v1 cfs quota), or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def setting() -> str:
    """'auto' (measure), 'one' or 'two', from NNGRAPH_THREADS and the usable cores."""
    value = os.environ.get("NNGRAPH_THREADS", "").strip().lower()
    if value in ("", "auto"):
        return "auto" if usable_cores() >= 2 else "one"
    if value not in ("1", "2"):
        raise ValueError(f"NNGRAPH_THREADS={value!r}: give 1, 2 or auto")
    return "one" if value == "1" else "two"


class Schedule:
    """Which way the next call of one kind of run goes, wide (two cores) or narrow (one),
    from the times of the calls so far. `clock` is for the tests."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.times = {True: [], False: []}      # this check's seconds per way
        self.wide_now = True                    # the way kept between checks
        self.checking = True
        self.calls = 0                          # since the last decision
        self.decided_at = clock()
        self.history: list[bool] = []           # decisions, for `nngraph bench` and tests

    def wide(self) -> bool:
        """Whether the next call runs wide."""
        if self.checking:                       # alternate, wide first
            return len(self.times[True]) <= len(self.times[False])
        self.calls += 1
        if self.calls >= RECHECK_CALLS and self.clock() - self.decided_at >= RECHECK_S:
            self.checking, self.times = True, {True: [], False: []}
            return True
        return self.wide_now

    def record(self, wide: bool, seconds: float) -> None:
        """The time a call took, run the way wide() said."""
        if not self.checking:
            return
        self.times[wide].append(seconds)
        if min(map(len, self.times.values())) >= TRIES:
            medians = {w: sorted(t)[len(t) // 2] for w, t in self.times.items()}
            self.wide_now = medians[True] <= medians[False]
            self.history.append(self.wide_now)
            self.checking, self.calls, self.decided_at = False, 0, self.clock()


class Fixed:
    """A schedule that always answers the same (NNGRAPH_THREADS=1 or 2, one usable core)."""

    def __init__(self, wide: bool):
        self.wide_now, self.history = wide, []

    def wide(self) -> bool:
        return self.wide_now

    def record(self, wide: bool, seconds: float) -> None:
        pass


class Schedules:
    """The Schedule of each kind of run, (mode, batch size), made on first use."""

    def __init__(self, mode: str):
        self.mode = mode                        # 'auto', 'one' or 'two' (setting())
        self.kinds: dict = {}

    def of(self, key) -> Schedule | Fixed:
        s = self.kinds.get(key)
        if s is None:
            s = self.kinds[key] = Schedule() if self.mode == "auto" else \
                Fixed(self.mode == "two")
        return s
