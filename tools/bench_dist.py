"""The `dist` case of tools/bench.py: data-parallel training over MPI (nngraph/dist.py).

The MNIST MLP (specs/mnist_mlp.yaml, 109k parameters) trains on the same 8,192 samples with a
global batch of 256 in three set-ups, each in processes of its own started by mpirun:
one rank with nngraph's thread choice (`auto`), one rank on one thread, and two ranks on one
thread each. Reported: samples/s of each, the time per step spent in the gradient Allreduce
(wall time of the call, which includes waiting for the slower rank), and the speed-up of two
ranks over the best single rank. There is no target: the issue asks for the figures.

    python tools/bench_dist.py --worker RANKS_LABEL      (what mpirun runs; prints JSON)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "specs", "mnist_mlp.yaml")
SAMPLES, BATCH = 8192, 256
SETUPS = (("1 rank, threads auto", 1, "auto"), ("1 rank, 1 thread", 1, "1"),
          ("2 ranks, 1 thread each", 2, "1"))


def mpirun_path() -> str | None:
    return shutil.which("mpirun", path=os.path.dirname(sys.executable)) or shutil.which("mpirun")


def bench_dist(backend: str, s, epochs: int | None = None) -> dict:
    """One entry, `dist.mlp`, with each set-up's figures."""
    mpirun = mpirun_path()
    if mpirun is None:
        return {"dist.mlp": {"error": "no mpirun: pip install nngraph[dist]", "pass": False}}
    epochs = epochs or (2 if s.repeats <= 2 else 6)
    runs = {}
    for label, ranks, threads in SETUPS:
        env = dict(os.environ, NNGRAPH_THREADS=threads)
        cmd = [mpirun, "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker",
               backend, str(epochs)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if r.returncode:
            return {"dist.mlp": {"error": f"{label}: {r.stderr.strip()[-800:]}", "pass": False}}
        runs[label] = json.loads(r.stdout.strip().splitlines()[-1])
    single = max(runs[label]["samples_per_s"] for label, ranks, _ in SETUPS if ranks == 1)
    two = runs[SETUPS[-1][0]]
    entry = {"spec": "specs/mnist_mlp.yaml", "backend": backend, "samples": SAMPLES,
             "global_batch": BATCH, "epochs": epochs, "runs": runs,
             "ratio_2_ranks_over_best_1_rank": two["samples_per_s"] / single,
             "allreduce_share_of_step": two["allreduce_ms_per_step"] / two["ms_per_step"],
             "pass": True}
    return {"dist.mlp": entry}


def worker(backend: str, epochs: int) -> None:
    import numpy as np
    import nngraph
    from nngraph import dist
    rng = np.random.default_rng(0)
    data = {"image": rng.random((SAMPLES, 784), dtype=np.float32),
            "label": rng.integers(0, 10, SAMPLES)}
    model = nngraph.compile(SPEC, backend=backend, seed=0)
    model.fit(data, epochs=1, batch_size=BATCH, verbose=0, shuffle=True)      # compile, warm
    stats = {}
    def note(epoch, logs):
        reduce = model.executor.reduce
        if reduce is not None:
            stats["seconds"], stats["calls"] = reduce.seconds, reduce.calls
    start = time.perf_counter()
    model.fit(data, epochs=epochs, batch_size=BATCH, verbose=0, callback=note)
    elapsed = time.perf_counter() - start
    w = dist.world()
    steps = epochs * -(-SAMPLES // BATCH)
    if w is None or w.rank == 0:
        print(json.dumps({"ranks": w.size if w else 1, "samples_per_s": epochs * SAMPLES / elapsed,
                          "ms_per_step": 1e3 * elapsed / steps,
                          "allreduce_ms_per_step": 1e3 * stats.get("seconds", 0.0)
                          / max(stats.get("calls", 1), 1),
                          "threads": os.environ.get("NNGRAPH_THREADS", "auto")}))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]))
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import bench_timing as bt
        print(json.dumps(bench_dist(sys.argv[1] if len(sys.argv) > 1 else "cpu", bt.QUICK),
                         indent=2))
