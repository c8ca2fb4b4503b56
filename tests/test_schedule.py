"""One core or two (backends/cpu/scheduler.py): the choice follows the measured times, a
busy second core is given up, and whichever way a run goes it computes the same bits."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nngraph
from nngraph.backends.cpu import executor as cpu_backend
from nngraph.backends.cpu import scheduler as cpu_schedule
from nngraph.backends.cpu.scheduler import RECHECK_CALLS, RECHECK_S, TRIES, Schedule
from test_backends import random_batch
from test_threads import CONV, N

ROOT = os.path.join(os.path.dirname(__file__), "..")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _drive(schedule, clock, seconds, calls):
    """Run `calls` calls through `schedule`, each taking seconds[wide]; the ways taken."""
    ways = []
    for _ in range(calls):
        wide = schedule.wide()
        clock.now += seconds[wide]
        schedule.record(wide, seconds[wide])
        ways.append(wide)
    return ways


def test_the_faster_way_is_kept_after_a_check():
    clock = Clock()
    s = Schedule(clock)
    ways = _drive(s, clock, {True: 0.002, False: 0.001}, 2 * TRIES)
    assert ways == [True, False] * TRIES                  # the check alternates, wide first
    assert s.history == [False]
    assert _drive(s, clock, {True: 0.002, False: 0.001}, 10) == [False] * 10
    s2 = Schedule(clock)
    _drive(s2, clock, {True: 0.001, False: 0.002}, 2 * TRIES)
    assert s2.history == [True] and s2.wide()


def test_a_new_check_comes_after_enough_calls_and_time():
    clock = Clock()
    s = Schedule(clock)
    _drive(s, clock, {True: 0.001, False: 0.002}, 2 * TRIES)
    assert s.history == [True]
    # many quick calls but too little time: no check yet
    _drive(s, clock, {True: 1e-6, False: 1e-6}, 4 * RECHECK_CALLS)
    assert s.history == [True] and not s.checking
    clock.now += RECHECK_S
    # the machine got busy: wide is now slower, and the next check says so
    ways = _drive(s, clock, {True: 0.005, False: 0.002}, 2 * TRIES + 5)
    assert s.history == [True, False]
    assert ways[-5:] == [False] * 5


def test_one_slow_call_does_not_decide():
    clock = Clock()
    s = Schedule(clock)
    times = iter([0.001, 0.002, 0.050, 0.002, 0.001, 0.002])   # wide, narrow, ...
    for _ in range(2 * TRIES):
        wide = s.wide()
        s.record(wide, next(times))
    assert s.history == [True]                        # medians 1 ms against 2 ms


def test_usable_cores_follow_the_cgroup_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(cpu_schedule, "_cgroup_quota", lambda: None)
    assert cpu_schedule.usable_cores() == 4
    monkeypatch.setattr(cpu_schedule, "_cgroup_quota", lambda: 1.5)
    assert cpu_schedule.usable_cores() == 2
    monkeypatch.setattr(cpu_schedule, "_cgroup_quota", lambda: 0.5)
    assert cpu_schedule.usable_cores() == 1
    monkeypatch.delenv("NNGRAPH_THREADS", raising=False)
    assert cpu_schedule.setting() == "one" and cpu_backend.threads() == 1
    monkeypatch.setattr(cpu_schedule, "_cgroup_quota", lambda: None)
    assert cpu_schedule.setting() == "auto" and cpu_backend.threads() == 2
    monkeypatch.setenv("NNGRAPH_THREADS", "1")
    assert cpu_schedule.setting() == "one"
    monkeypatch.setenv("NNGRAPH_THREADS", "2")
    assert cpu_schedule.setting() == "two"


def _trained(monkeypatch, mode, spec=CONV, steps=4):
    monkeypatch.setenv("NNGRAPH_THREADS", "auto")
    monkeypatch.setattr(cpu_schedule, "usable_cores", lambda: 2)
    model = nngraph.compile(spec, backend="cpu", seed=5)
    model.executor.schedules.mode = mode
    losses = [model.train_step(random_batch(model.net, N, "float32", seed=s))
              for s in range(steps)]
    out = model.predict(random_batch(model.net, N, "float32", seed=99))
    return model, losses, out


def test_wide_and_narrow_runs_compute_the_same_bits(monkeypatch):
    """Halves one after the other on this thread are the halves run at once; a whole batch
    on one MKL thread is the whole batch on two."""
    dense = CONV.replace("  - {op: conv2d, filters: 3, kernel: 3, activation: relu}\n"
                         "  - {op: maxpool2d, size: 2}\n", "")
    for spec in (CONV, dense):
        wide, wide_losses, wide_out = _trained(monkeypatch, "two", spec)
        narrow, narrow_losses, narrow_out = _trained(monkeypatch, "one-way", spec)
        assert wide_losses == narrow_losses
        np.testing.assert_array_equal(wide_out, narrow_out)
        for k in wide.params:
            np.testing.assert_array_equal(wide.params[k], narrow.params[k])
        assert all(not s.wide() for s in narrow.executor.schedules.kinds.values())


def test_a_second_thread_that_is_slow_to_come_is_given_up(monkeypatch):
    """As on a busy machine, where the second thread waits for a core: the schedule
    measures both ways and keeps the halves on the calling thread."""
    from nngraph.backends.cpu import parallel as cpu_threads
    pair = cpu_threads.second()
    real = pair.run_beside

    def late(job, arg, own):
        def slow(a):
            import time
            time.sleep(0.02)
            return job(a)
        return real(slow, arg, own)

    monkeypatch.setattr(pair, "run_beside", late)
    model, losses, _ = _trained(monkeypatch, "auto", steps=2 * TRIES + 3)
    schedule = model.executor.schedules.kinds[("train", N)]
    assert schedule.history == [False]
    assert not schedule.wide()
    assert all(np.isfinite(losses))


@pytest.fixture(autouse=True)
def _one_way(monkeypatch):
    """Schedules.mode 'one-way': always narrow, with the split the model was made with."""
    real = cpu_schedule.Schedules.of

    def of(self, key):
        if self.mode == "one-way":
            return self.kinds.setdefault(key, cpu_schedule.Fixed(False))
        return real(self, key)
    monkeypatch.setattr(cpu_schedule.Schedules, "of", of)


def test_openblas_runs_its_products_on_one_thread_beside_ours():
    """Under OpenBLAS a split batch's products and a convolution's chunks run on one
    OpenBLAS thread (its two threads beside ours made a LeNet-5 step 80x slower), and the
    halves still compute what one thread computes."""
    code = textwrap.dedent(f"""
        import numpy as np, sys
        sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
        import nngraph
        from nngraph.kernels.cpu import blas
        from test_backends import random_batch
        from test_threads import CONV, N
        assert blas.PROVIDER == "openblas"
        lib = blas._openblas_controller()
        assert lib is not None and "scipy" in lib.filepath, lib
        import os
        results = {{}}
        for threads in ("1", "2"):
            os.environ["NNGRAPH_THREADS"] = threads
            lib.set_num_threads(2)
            model = nngraph.compile(CONV, backend="cpu", seed=1, dtype="float64")
            losses = [model.train_step(random_batch(model.net, N, "float64", seed=s))
                      for s in range(3)]
            assert lib.num_threads == 1, lib.num_threads
            results[threads] = (losses, model.params)
        assert model.executor.split_modes["train"]
        for k in results["1"][1]:
            np.testing.assert_allclose(results["1"][1][k], results["2"][1][k], rtol=1e-9)
        print("ok")
    """)
    env = {**os.environ, "NNGRAPH_BLAS": "openblas"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_repeated_predicts_of_large_batches_stay_on_the_schedule(monkeypatch):
    """The quick way of a repeated predict skips the schedule, so it is kept for batches
    too small for the second core: a batch of a dense network that MKL could run on two
    threads is timed both ways like any other (it ran wide unmeasured, 5x slower than
    ONNX Runtime beside two busy processes)."""
    dense = CONV.replace("  - {op: conv2d, filters: 3, kernel: 3, activation: relu}\n"
                         "  - {op: maxpool2d, size: 2}\n", "")
    monkeypatch.setenv("NNGRAPH_THREADS", "auto")
    monkeypatch.setattr(cpu_schedule, "usable_cores", lambda: 2)
    model = nngraph.compile(dense, backend="cpu", seed=5)
    x = random_batch(model.net, N, "float32", seed=1)["x"]
    for _ in range(2 * TRIES + 2):
        model.predict(x)
    assert model.executor.quick is None
    assert model.executor.schedules.kinds[("predict", N)].history
    np.testing.assert_allclose(model.predict(x)[:3], model.predict(x[:3]), rtol=1e-5,
                               atol=1e-6)
