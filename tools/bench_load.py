"""Busy processes beside the benchmark (`bench.py --load N`): the load a user's machine has
while nngraph trains on it, a compiler or a test suite in another window.

Each is its own Python interpreter spinning on pure-Python integer arithmetic: one thread
(OMP, MKL, OpenBLAS and numba thread counts 1 in its environment), the benchmark's priority,
no memory to speak of. The scheduler then shares the cores between it and the benchmark's
threads as it would with any other program, and what suffers is what depends on all of its
threads running at once (OpenMP barriers, spinning thread pools).

A busy process ends by itself when the benchmark does, however the benchmark ends: it
exits when its stdin, a pipe from the benchmark, closes (the benchmark closes it to stop
it; the kernel closes it when the benchmark dies, SIGKILL included), and when its parent
is no longer the benchmark. Its command line ends with MARKER, so `ps` shows what it is.

    with BusyLoad(2) as busy:       # two busy processes until the block is left
        measure()
    busy.cpu_seconds                # the CPU time each got, [seconds, seconds]
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

MARKER = "nngraph-bench-busy"

# argv[1]: the benchmark's pid. A reader thread blocks on stdin until end of file; the main
# thread spins, checking its parent every ~2 ms of work.
_BUSY = r"""
import os, sys, threading
parent = int(sys.argv[1])
def watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
x = 1
while os.getppid() == parent:
    for _ in range(20000):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
"""

_ONE_THREAD = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMBA_NUM_THREADS")


class BusyLoad:
    """`count` busy processes from __enter__ (or start) until __exit__ (or stop), which
    stops them also when the block ends by an exception or Ctrl-C. After stop,
    `cpu_seconds` holds the CPU time each used (None where /proc cannot say) and
    `wall_seconds` how long they ran."""

    def __init__(self, count: int):
        if count < 0:
            raise ValueError(f"--load takes a count of busy processes >= 0, not {count}")
        self.count = count
        self.procs: list[subprocess.Popen] = []
        self.cpu_seconds: list[float | None] = []
        self.wall_seconds = 0.0
        self._started = 0.0
        self._running = False

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self) -> BusyLoad:
        env = dict(os.environ, **{name: "1" for name in _ONE_THREAD})
        self._started, self._running = time.perf_counter(), True
        for _ in range(self.count):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BUSY, str(os.getpid()), MARKER],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env))
        return self

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self.wall_seconds = time.perf_counter() - self._started
        self.cpu_seconds = [cpu_seconds(p.pid) for p in self.procs]
        for p in self.procs:
            p.stdin.close()              # end of file: the process exits
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> BusyLoad:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def record(self) -> dict:
        """The JSON document's account of the load: how many, and the CPU each got."""
        return {"count": self.count, "wall_seconds": round(self.wall_seconds, 2),
                "cpu_seconds": [None if c is None else round(c, 2) for c in self.cpu_seconds]}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from /proc/<pid>/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
