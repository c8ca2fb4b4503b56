"""Drivers that call their kernels without numba's dispatcher (backends/cpu/fast_path.py):
built after a mode's first run, used only for batches typed as the one they were built for,
and the same numbers as the dispatcher's calls."""
import numba
import pytest
import numpy as np

import nngraph
from nngraph.backends.cpu import fast_path as cpu_direct
from nngraph.backends.cpu.module import call_driver
from test_threads import CONV, N


def test_predict_and_train_go_direct_with_the_same_numbers():
    model = nngraph.compile(CONV, backend="cpu", seed=3)
    twin = nngraph.compile(CONV, backend="cpu", seed=3)
    ex = model.executor
    rng = np.random.default_rng(0)
    for step in range(4):
        x = rng.standard_normal((N, 1, 10, 10)).astype(np.float32)
        batch = {"x": x, "label": rng.integers(0, 4, N)}
        assert model.train_step(batch) == twin.train_step(batch)
        assert np.array_equal(model.predict(x), twin.predict(x))
        twin.executor.direct = {m: None for m in ("train", "evaluate", "predict")}
    assert ex.direct["train"] is not None and ex.direct["predict"] is not None
    straight = ex.direct["predict"].driver.__globals__
    assert type(straight["k_out"]).__name__ == "builtin_function_or_method"   # entry point
    for k in model.params:
        assert np.array_equal(model.params[k], twin.params[k])


def test_batches_typed_otherwise_go_through_the_dispatchers():
    model = nngraph.compile(CONV, backend="cpu", seed=3)
    ex = model.executor
    x = np.random.default_rng(1).standard_normal((3, 1, 10, 10)).astype(np.float32)
    for _ in range(3):
        want = model.predict(x)
    direct = ex.direct["predict"]
    assert direct.fits({"x": x})
    frozen = x.copy()
    frozen.setflags(write=False)            # numba types a read-only array apart
    assert not direct.fits({"x": frozen})
    assert not direct.fits({"x": x.astype(np.float64)}) and not direct.fits({})
    assert np.array_equal(model.predict(frozen), want)


twice = numba.njit(lambda a: a.sum())
once = numba.njit(lambda a: a[0])


def _driver(R, a, b):               # a driver names its kernels as globals, like these
    return twice(a) + twice(b) + once(a)


def test_a_kernel_called_with_two_signatures_keeps_its_dispatcher():
    driver = _driver
    views = {"a": np.ones(3, np.float32), "b": np.ones(3)}
    call_driver(driver, views, None)
    direct = cpu_direct.direct(driver, views, {"a": views["a"]})
    names = direct.driver.__globals__
    assert names["twice"] is twice and names["once"] is not once
    assert call_driver(direct.driver, views, None) == call_driver(driver, views, None) == 7.0
    assert cpu_direct.direct(driver, views, {"a": np.ones((4, 2))[:, 0]}) is None  # strided


def test_a_repeated_predict_takes_the_quick_way_and_leaves_it_when_anything_differs():
    """Model.predict repeats the last call's direct run (CPUExecutor.quick_predict) for an
    array of the same dtype and shape, and goes the usual way, with its checks and
    conversions, for anything else: the numbers are the usual way's throughout."""
    from nngraph.errors import DataError
    model = nngraph.compile(CONV, backend="cpu", seed=3)
    usual = nngraph.compile(CONV, backend="cpu", seed=3)
    usual._quick_predict = None
    ex, rng = model.executor, np.random.default_rng(2)
    x = rng.standard_normal((5, 1, 10, 10)).astype(np.float32)
    for _ in range(3):
        assert np.array_equal(model.predict({"x": x}), usual.predict({"x": x}))
    assert ex.quick is not None and ex.quick_predict(model.params, x, 256) is not None
    frozen = x.copy()
    frozen.setflags(write=False)
    others = [x[:4], x.astype(np.float64), x[:, :, ::-1, :], frozen, x.reshape(5, 100),
              [list(s) for s in x[:2]]]
    for other in others:                         # fewer samples, a cast, a strided view,
        assert ex.quick_predict(model.params, other, 256) is None   # read-only, a reshape
        assert np.array_equal(model.predict(other), usual.predict(other))
    assert ex.quick_predict(model.params, x, 4) is None        # a smaller batch_size
    model.params["out.W"][0, 0] += 1.0           # edited in place: seen
    usual.params["out.W"][0, 0] += 1.0
    assert np.array_equal(model.predict(x), usual.predict(x))
    model.params["out.W"] = model.params["out.W"] * 2          # replaced: copied in
    usual.params["out.W"] = usual.params["out.W"] * 2
    assert ex.quick_predict(model.params, x, 256) is None
    assert np.array_equal(model.predict(x), usual.predict(x))
    bad = x.copy()
    bad[3, 0, 9, 9] = np.nan
    with pytest.raises(DataError, match=r"got 1 NaN \(the first in sample 3 "):
        model.predict(bad)
