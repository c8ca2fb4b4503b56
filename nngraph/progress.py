"""A Keras-like progress bar for training:

    Epoch 3/10
    50/63 [=======================>......] - ETA: 1s - loss: 0.2104 - accuracy: 0.9375

On a terminal the line redraws in place (at most 10 times a second); elsewhere (CI logs,
pipes) only the finished line of each epoch is printed.
"""
from __future__ import annotations

import shutil
import sys
import threading
import time

WIDTH = 30


def format_logs(logs: dict) -> str:
    return "".join(f" - {k}: {v:.4f}" for k, v in logs.items() if v is not None)


def format_seconds(s: float) -> str:
    if s >= 3600:
        return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"
    if s >= 60:
        return f"{int(s // 60)}:{int(s % 60):02d}"
    return f"{s:.0f}s"


class ProgressBar:
    def __init__(self, steps: int, epoch: int, epochs: int, stream=None):
        self.steps, self.stream = max(steps, 1), stream or sys.stdout
        self.live = getattr(self.stream, "isatty", lambda: False)()
        self.start = self.last = time.perf_counter()
        print(f"Epoch {epoch}/{epochs}", file=self.stream, flush=True)

    def _bar(self, step: int) -> str:
        done = int(WIDTH * step / self.steps)
        arrow = ">" if step < self.steps else "="
        bar = "=" * max(done - 1, 0) + (arrow if done else "") + "." * (WIDTH - done)
        return f"{step}/{self.steps} [{bar}]"

    def due(self, step: int) -> bool:
        """Would update() draw now? (So that the caller computes the logs only then.)"""
        return self.live and (step >= self.steps or time.perf_counter() - self.last >= 0.1)

    def update(self, step: int, logs: dict) -> None:
        if not self.due(step):
            return
        now = self.last = time.perf_counter()
        eta = (now - self.start) / step * (self.steps - step)
        line = f"{self._bar(step)} - ETA: {format_seconds(eta)}{format_logs(logs)}"
        # a line that wraps cannot be redrawn in place: cut to the terminal's width (the
        # finished line, printed once, keeps every figure)
        width = shutil.get_terminal_size().columns - 1
        self.stream.write("\r" + (line if len(line) <= width else line[:width - 1] + "…")
                          + "\033[K")
        self.stream.flush()

    def finish(self, logs: dict) -> None:
        elapsed = time.perf_counter() - self.start
        per_step = elapsed / self.steps
        unit = f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3 else f"{per_step * 1e6:.0f}us/step"
        line = f"{self._bar(self.steps)} - {format_seconds(elapsed)} {unit}{format_logs(logs)}"
        self.stream.write(("\r" if self.live else "") + line + ("\033[K" if self.live else "") + "\n")
        self.stream.flush()


class Spinner:
    """'compiling lenet5 for cpu ... ⠹ 3 s' while a long silent step runs, then '... done
    note'. On a terminal a thread redraws the line four times a second; elsewhere the
    line is printed when the step starts and finished when it ends.

        with Spinner("compiling lenet5") as s:
            work()
            s.done("9 kernels in 4.1 s")
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, what: str, stream=None):
        self.what, self.stream = what, stream or sys.stdout
        self.live = getattr(self.stream, "isatty", lambda: False)()
        self.note, self.stop = "", threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True) if self.live else None

    def __enter__(self):
        self.start = time.perf_counter()
        if self.thread:
            self.thread.start()
        else:
            self.stream.write(f"{self.what} ...")
            self.stream.flush()
        return self

    def _spin(self):
        i = 0
        while not self.stop.wait(0.25):
            seconds = time.perf_counter() - self.start
            self.stream.write(f"\r{self.what} ... {self.FRAMES[i % len(self.FRAMES)]} "
                              f"{seconds:.0f} s\033[K")
            self.stream.flush()
            i += 1

    def done(self, note: str) -> None:
        self.note = note

    def __exit__(self, kind, *_):
        if self.thread:
            self.stop.set()
            self.thread.join()
            self.stream.write(f"\r{self.what} ...\033[K")
        end = self.note if kind is None else "failed"
        self.stream.write(f" {end}\n")
        self.stream.flush()
        return False
