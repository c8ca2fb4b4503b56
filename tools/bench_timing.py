"""How the benchmark measures: throughput loops, per-call latency, numpy's GEMM rate and
nngraph's compile time in fresh processes."""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Settings:
    warmup_steps: int = 10        # untimed calls before the first timed repeat
    repeats: int = 5              # timed repeats per measurement; the median is reported
    min_time_s: float = 1.0       # each throughput repeat runs at least this long
    latency_calls: int = 400      # batch-1 calls timed per repeat (at least)
    gemm_calls: int = 20
    compile_cold_runs: int = 3    # first compiles, each with empty caches; the median is reported
    compile_warm_runs: int = 3    # second-process compiles; the median is reported
    settle_s: float = 0.3         # idle pause before each timed repeat (see throughput)


FULL = Settings()
QUICK = Settings(warmup_steps=2, repeats=2, min_time_s=0.2, latency_calls=30, gemm_calls=5,
                 compile_cold_runs=1, compile_warm_runs=1)


def scope(scopes: dict | None, name: str):
    """The context a contender runs in: `scopes[name]()`, or none."""
    return (scopes or {}).get(name, contextlib.nullcontext)()


def throughput(contenders: dict, items: dict, batch: int, s: Settings,
               scopes: dict | None = None) -> dict:
    """Samples/s of each contender {name: fn(item)} over its list of `items[name]`, cycled.
    Repeats alternate between contenders so that drift in machine load hits all alike. Each
    repeat starts with a short idle pause, so that the thread pool the previous contender
    used is asleep (OpenBLAS, OpenMP, ORT all spin a while after work: Intel OpenMP, which
    MKL runs on, for 200 ms), and one untimed call. A contender's warm-up and each of its
    repeats run inside `scopes[name]()` where given (peers.torch_threads: PyTorch's thread
    count is one setting for the whole process)."""
    for name, fn in contenders.items():
        with scope(scopes, name):
            for i in range(s.warmup_steps):
                fn(items[name][i % len(items[name])])
    rates = {name: [] for name in contenders}
    for _ in range(s.repeats):
        for name, fn in contenders.items():
            pool = items[name]
            with scope(scopes, name):
                time.sleep(s.settle_s)
                fn(pool[0])
                steps, start = 0, time.perf_counter()
                while True:
                    fn(pool[steps % len(pool)])
                    steps += 1
                    elapsed = time.perf_counter() - start
                    if elapsed >= s.min_time_s:
                        break
            rates[name].append(steps * batch / elapsed)
    return {name: {"median": statistics.median(r), "repeats": [round(v, 1) for v in r]}
            for name, r in rates.items()}


def latency(contenders: dict, inputs: dict, s: Settings, scopes: dict | None = None) -> dict:
    """Median seconds per call of each contender {name: fn(x)} on its `inputs[name]`, over
    repeats x latency_calls individually timed calls (and at least min_time_s per repeat),
    interleaved and scoped as in throughput."""
    for name, fn in contenders.items():
        with scope(scopes, name):
            for _ in range(10 * s.warmup_steps):
                fn(inputs[name])
    times = {name: [] for name in contenders}
    for _ in range(s.repeats):
        for name, fn in contenders.items():
            x, out = inputs[name], times[name]
            with scope(scopes, name):
                time.sleep(s.settle_s)
                for _ in range(min(10, s.latency_calls)):
                    fn(x)
                start = time.perf_counter()
                calls = 0
                while calls < s.latency_calls or time.perf_counter() - start < s.min_time_s:
                    t0 = time.perf_counter_ns()
                    fn(x)
                    out.append(time.perf_counter_ns() - t0)
                    calls += 1
    return {name: {"median_s": statistics.median(t) * 1e-9,
                   "p90_s": float(np.percentile(t, 90)) * 1e-9, "calls": len(t)}
            for name, t in times.items()}


def gemm_gflops(s: Settings, n: int = 1024) -> dict:
    """numpy's float32 n x n x n matrix product: 2 n^3 FLOPs over the median call time."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    time.sleep(s.settle_s)
    for _ in range(3):
        np.dot(a, b, out=out)
    times = []
    for _ in range(s.gemm_calls):
        t0 = time.perf_counter()
        np.dot(a, b, out=out)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    return {"n": n, "median_s": t, "gflops": 2 * n ** 3 / t / 1e9,
            "best_gflops": 2 * n ** 3 / min(times) / 1e9, "calls": len(times)}


# Run in a fresh interpreter: numpy and numba are imported, and numba initialised, before the
# clock starts (every process that uses numba pays for them, nngraph or not: numba's first
# compilation or cache load fills its typing and lowering registries, which imports
# scipy.linalg, ~0.4-0.6 s on the 2-core machine; it is reported as numba_init_s); then import
# nngraph, compile, and make the first train_step and predict, which is where lazy compilation
# happens. One steady-state step and predict are measured afterwards and subtracted, leaving
# the compile work.
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, numba
t1 = time.perf_counter()
from numba.core.registry import cpu_target
cpu_target.typing_context.refresh()
cpu_target.target_context.refresh()
t1b = time.perf_counter()
import nngraph
t2 = time.perf_counter()
cfg = json.load(sys.stdin)
rng = np.random.default_rng(0)
x = rng.random([cfg["batch"]] + cfg["sample_shape"]).astype(np.float32)
batch = {cfg["input"]: x, "label": rng.integers(0, 10, cfg["batch"]).astype(np.int64)}
t3 = time.perf_counter()
model = nngraph.compile(cfg["spec"], backend=cfg["backend"], seed=0)
t4 = time.perf_counter()
model.train_step(batch)
t5 = time.perf_counter()
model.predict({cfg["input"]: x})
t6 = time.perf_counter()
steady_train, steady_predict = [], []
for _ in range(3):
    a = time.perf_counter(); model.train_step(batch); b = time.perf_counter()
    model.predict({cfg["input"]: x}); c = time.perf_counter()
    steady_train.append(b - a); steady_predict.append(c - b)
print(json.dumps({"import_numpy_numba_s": t1 - t0, "numba_init_s": t1b - t1,
                  "import_nngraph_s": t2 - t1b,
                  "compile_call_s": t4 - t3, "first_train_step_s": t5 - t4,
                  "first_predict_s": t6 - t5, "steady_train_step_s": min(steady_train),
                  "steady_predict_s": min(steady_predict),
                  "executor": type(model.executor).__name__}))
"""


def compile_once(cfg: dict, env: dict) -> dict:
    """One child process; returns its timings plus `seconds`, the compile work:
    compile() + first train_step + first predict - one steady train_step and predict."""
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(cfg), env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"compile subprocess failed:\n{proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    first = r["compile_call_s"] + r["first_train_step_s"] + r["first_predict_s"]
    r["seconds"] = max(0.0, first - r["steady_train_step_s"] - r["steady_predict_s"])
    r["seconds_with_numba_init"] = r["seconds"] + r["numba_init_s"]
    return r


def compile_times(cfg: dict, s: Settings) -> tuple[list[dict], list[dict]]:
    """([cold...], [warm...]): each cold run in a process with empty NNGRAPH_CACHE_DIR and
    NUMBA_CACHE_DIR of its own, the warm runs in later processes that reuse the last cold
    run's directories. The 2-core development VM's speed drifted by 1.3-2x over minutes
    (the import of numpy and numba alone took 0.35-0.51 s in one session's runs), so one
    cold run says little: the caller reports the median and every run."""
    cold, warm = [], []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for run in range(s.compile_cold_runs):
        with tempfile.TemporaryDirectory(prefix="nngraph-bench-") as tmp:
            env = dict(os.environ, NNGRAPH_CACHE_DIR=os.path.join(tmp, "nngraph"),
                       NUMBA_CACHE_DIR=os.path.join(tmp, "numba"))
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
            cold.append(compile_once(cfg, env))
            if run == s.compile_cold_runs - 1:
                warm = [compile_once(cfg, env) for _ in range(s.compile_warm_runs)]
    return cold, warm


def agree(case: str, fns: dict, inputs: dict, scopes: dict) -> dict:
    """{peer variant: largest absolute difference from nngraph's prediction} on the first
    input; raises when one exceeds 1e-4 of the largest output (1 at least): the timings
    would then compare different computations."""
    ours = np.asarray(fns["nngraph"](inputs["nngraph"][0]))
    diffs = {}
    for who, fn in fns.items():
        if who != "nngraph":
            with scope(scopes, who):
                theirs = np.asarray(fn(inputs[who][0]))
            diffs[who] = float(np.abs(ours - theirs).max())
    scale = float(np.abs(ours).max())
    for peer, d in diffs.items():
        if not d <= 1e-4 * max(1.0, scale):
            raise AssertionError(f"{case}: predictions differ from {peer} by {d:.2e}")
    return diffs
