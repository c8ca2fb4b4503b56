"""Compiling a CPU program on two processes (nngraph/backends/cpu/compiler.py)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nngraph.backends.cpu.fork import Forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "lenet5.yaml")

_CHILD = r"""
import json, sys
import numpy as np
import nngraph
from nngraph.kernels.cpu import blas
model = nngraph.compile(sys.argv[1], backend="cpu", seed=0, dtype=sys.argv[2])
rng = np.random.default_rng(0)
x = rng.random((8,) + model.net.inputs["image"].shape).astype(sys.argv[2])
y = rng.integers(0, 10, 8)
losses = [model.train_step((x, y)) for _ in range(2)]
out = model.predict(x)
report = model.executor.compile_report
print(json.dumps({"losses": losses, "out": out.tolist(), "report": report,
                  "bound": sorted(blas._bound)}))
"""


def _run(tmp, jobs, spec=SPEC, dtype="float32"):
    env = dict(os.environ, NNGRAPH_CACHE_DIR=os.path.join(tmp, "nngraph"),
               NUMBA_CACHE_DIR=os.path.join(tmp, "numba"), NNGRAPH_COMPILE_JOBS=str(jobs))
    proc = subprocess.run([sys.executable, "-c", _CHILD, spec, dtype], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_processes_compile_what_one_does(tmp_path):
    """A first run with NNGRAPH_COMPILE_JOBS=2 shares the kernels between this process and
    a worker, which reports no error; a second process finds everything in the cache and
    starts no worker; both compute what a single-process compile computes (to float32
    rounding: MKL's summation order may differ between processes with the alignment of the
    arrays)."""
    two = _run(str(tmp_path / "two"), 2)
    report = two["report"]
    assert report["jobs"] == 2 and report["worker_error"] is None, report
    assert report["worker_start"] == "fork"     # a process with one Python thread forks
    worker = {name.rsplit(".", 1)[1] for name, _ in report["worker"]}
    here = {name.rsplit(".", 1)[1] for name, _ in report["here"]}
    assert worker and here and not worker & here, report
    # the fork compiled the BLAS product first, while this process recorded the calls
    assert report["worker"][0][0] == "nngraph.kernels.cpu.blas.product_s", report
    assert {"conv2d_forward", "conv2d_backward"} <= worker | here
    again = _run(str(tmp_path / "two"), 2)
    assert again["report"]["jobs"] == 1 and not again["report"]["worker"], again["report"]
    one = _run(str(tmp_path / "one"), 1)
    assert one["report"]["jobs"] == 1 and not one["report"]["worker"]
    for other in (again, one):
        np.testing.assert_allclose(other["losses"], two["losses"], rtol=1e-6)
        np.testing.assert_allclose(other["out"], two["out"], rtol=1e-5, atol=1e-7)
    # a float32 network binds the float32 product alone, compiled or loaded from the cache
    assert two["bound"] == again["bound"] == one["bound"] == ["s"]


def test_float64_products_are_bound_before_cached_kernels_call_them(tmp_path):
    """A float64 network binds the float64 product when its kernels are compiled, and, in a
    second process, before they are loaded from numba's cache (which would otherwise link
    code calling an unbound symbol): the same numbers both times."""
    spec = os.path.join(ROOT, "specs", "mnist_mlp.yaml")
    first = _run(str(tmp_path), 1, spec, "float64")
    again = _run(str(tmp_path), 1, spec, "float64")
    assert first["bound"] == again["bound"] == ["d"]
    np.testing.assert_allclose(again["losses"], first["losses"], rtol=1e-12)
    np.testing.assert_allclose(again["out"], first["out"], rtol=1e-12)


def test_compile_jobs_setting_is_checked(monkeypatch):
    from nngraph.backends.cpu import compiler as cpu_compile
    monkeypatch.setenv("NNGRAPH_COMPILE_JOBS", "two")
    with pytest.raises(ValueError, match="NNGRAPH_COMPILE_JOBS='two'"):
        cpu_compile.jobs()
    monkeypatch.setenv("NNGRAPH_COMPILE_JOBS", "1")
    assert cpu_compile.jobs() == 1


@pytest.mark.parametrize("fork", [True, False])
def test_a_worker_that_fails_leaves_the_compile_to_this_process(monkeypatch, fork):
    """The worker is only an accelerator: a call it cannot compile is reported, and this
    process compiles and runs it on first use; forked or started as a new Python process
    (this process runs other Python threads under pytest-xdist: the count is set here)."""
    import numba
    from nngraph.backends.cpu import compiler as cpu_compile

    @numba.njit
    def twice(x):
        return 2 * x

    monkeypatch.setattr(cpu_compile.threading, "active_count", lambda: 1 if fork else 2)
    report = {"worker_error": None, "worker": [], "jobs": 1}
    worker = cpu_compile.Worker()
    assert isinstance(worker.proc, Forked) == fork
    # A kernel the worker cannot import (defined here, in a test function).
    assert worker.send([(twice, (numba.int64,))], {}, report)
    worker.wait(report)
    assert report["worker_error"] and "twice" in report["worker_error"], report
    assert twice(21) == 42


def test_the_worker_takes_the_calls_left_and_waits_for_the_products():
    """Both processes take calls from one list, each the next one not taken yet; the
    worker takes none that compiles the BLAS products until every kind the calls need is in
    the cache."""
    from nngraph.backends.cpu import compile_worker, compiler as cpu_compile
    claims = cpu_compile.Claims()
    try:
        job = {"calls": ["a", "b", "c", "d"], "claims": claims.path, "kinds": ["d", "s"],
               "gemm": [True, False, True, False]}
        assert claims.take(3)                       # this process took "d"
        taken = compile_worker._taken(job)
        assert next(taken) == "b"                   # "a" would compile the products
        claims.set_products("s")
        assert not claims.products(["d", "s"])
        claims.set_products("d")
        assert list(taken) == ["a", "c"]
        assert not any(claims.take(i) for i in range(4))
    finally:
        claims.remove()
    assert not os.path.exists(claims.path)


def test_calls_gemm_finds_products_direct_and_through_kernel_modules():
    """The worker compiles the BLAS product ahead of the calls when generated code calls
    gemm, itself or through a kernel module whose kernels multiply (those import gemm)."""
    from nngraph.backends.cpu.kernel_modules import calls_gemm, module_calls_gemm, modules
    assert {"conv", "conv_wide", "recurrent"} <= {m for m in modules() if module_calls_gemm(m)}
    assert not module_calls_gemm("pool") and not module_calls_gemm("softmax")
    assert calls_gemm("    gemm(1.0, x, False, W, False, 0.0, y)")
    assert calls_gemm("    unfit += _conv.conv2d_forward(v_image, ...)")
    assert calls_gemm("    _recurrent.lstm_forward(v_x, ...)")
    assert not calls_gemm("    _pool.maxpool2d_forward(v_c1, ...)\n    y = _gemm_like")
    assert not calls_gemm("    _nomodule.gemm_forward(v_c1)")


_DEAD_WORKER = r"""
import json, os, sys
import numpy as np
from nngraph.backends.cpu import compile_worker, compiler as cpu_compile
cpu_compile.PRODUCTS_WAIT_S = 3600.0                 # so that only the worker's exit counts
compile_worker.compile_products = lambda *args: 0               # no product, no marker
compile_worker.compile_job = lambda *args: os._exit(3)          # dies once it has the job
import nngraph
from nngraph.kernels.cpu import blas
model = nngraph.compile(sys.argv[1], backend="cpu", seed=0)
rng = np.random.default_rng(0)
x, y = rng.random((8, 784)).astype(np.float32), rng.integers(0, 10, 8)
loss = model.train_step((x, y))
print(json.dumps({"loss": loss, "report": model.executor.compile_report,
                  "bound": sorted(blas._bound)}))
"""


def test_a_worker_that_dies_before_its_products_leaves_them_to_this_process(tmp_path):
    """A forked worker compiles the BLAS product first, and this process waits for it before
    the kernels that call gemm; when the worker dies instead, this process does not wait
    for the products any longer but compiles them itself (the child waits an hour else)."""
    env = dict(os.environ, NNGRAPH_CACHE_DIR=str(tmp_path / "nngraph"),
               NUMBA_CACHE_DIR=str(tmp_path / "numba"), NNGRAPH_COMPILE_JOBS="2")
    spec = os.path.join(ROOT, "specs", "mnist_mlp.yaml")
    proc = subprocess.run([sys.executable, "-c", _DEAD_WORKER, spec], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["report"]["worker_start"] == "fork"
    assert "exit status 3" in out["report"]["worker_error"], out["report"]
    assert out["bound"] == ["s"] and np.isfinite(out["loss"])


_TWO_WORKERS = r"""
import json, sys
import numpy as np
import nngraph
model = nngraph.compile(sys.argv[1], backend="cpu", seed=0)
frozen = model.freeze()        # a second new module while the first one's worker waits
x = np.random.default_rng(0).random((4, 784)).astype(np.float32)
a, b = model.predict(x), frozen.predict(x)
print(json.dumps({"reports": [model.executor.compile_report, frozen.executor.compile_report],
                  "diff": float(np.abs(a - b).max())}))
"""


def test_two_workers_at_once_do_not_hold_each_other(tmp_path):
    """A model compiled for the first time and frozen before its first run has two forked
    workers waiting for their calls at once. The second fork must not keep a copy of the
    first one's job pipe: the first would wait for the end of its job (and this process
    for it) until the worker timeout, ten minutes."""
    env = dict(os.environ, NNGRAPH_CACHE_DIR=str(tmp_path / "nngraph"),
               NNGRAPH_COMPILE_JOBS="2")
    spec = os.path.join(ROOT, "specs", "mnist_mlp.yaml")
    proc = subprocess.run([sys.executable, "-c", _TWO_WORKERS, spec], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    first, frozen = out["reports"]
    assert first["jobs"] == 2 and first["worker_start"] == "fork", first
    # the frozen module's worker, started with it, took part if two kernels were left
    # (the checks' kernels may have compiled in the first run)
    assert first["worker_error"] is None and frozen["worker_error"] is None, out["reports"]
    assert out["diff"] < 1e-4
