"""Model.freeze(): a predict-only copy of a model whose dense weights the CPU backend packs
once (kernels/cpu/packed.py), with the model's predictions and none of its later changes."""
import numpy as np
import pytest

import nngraph
from nngraph.kernels.cpu import blas

SPECS = ["specs/mnist_mlp.yaml", "specs/lenet5.yaml", "specs/vgg_blocks.yaml"]


def _inputs(model, n, seed=0):
    rng = np.random.default_rng(seed)
    (name, inp), = [(k, v) for k, v in model.net.inputs.items() if v.dtype.startswith("float")]
    return {name: rng.random((n,) + tuple(inp.shape)).astype(model.dtype)}


@pytest.mark.parametrize("spec", SPECS)
def test_a_frozen_model_predicts_what_the_model_does(spec):
    model = nngraph.compile(spec, backend="cpu", seed=1)
    frozen = model.freeze()
    for n in (1, 3, 40, 300):           # one row, a few, a split batch, two parts
        x = _inputs(model, n, seed=n)
        want, got = model.predict(x), frozen.predict(x)
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= 1e-5 * max(scale, 1.0), (spec, n)
        assert np.array_equal(frozen.predict(x), got)      # the same again (direct calls)


@pytest.mark.skipif(blas.PROVIDER != "mkl", reason="packed weights are MKL's (gemm_compute)")
def test_the_mlp_s_first_layer_is_packed_and_later_changes_do_not_reach_it():
    model = nngraph.compile("specs/mnist_mlp.yaml", backend="cpu", seed=2)
    frozen = model.freeze()
    packed = {k: v.size > 0 for k, v in frozen.executor.packed.items()}
    assert packed == {"hidden1.W": True, "hidden2.W": False, "logits.W": False}
    x = _inputs(model, 64)
    before = frozen.predict(x)
    assert "gemm_packed(x, W, Wp, y)" in frozen.executor.source
    assert frozen.executor.frozen == (blas.PROVIDER == "mkl")
    model.params["hidden1.W"][...] = 0
    model.train_step({**x, "label": np.zeros(64, np.int64)})
    assert not np.allclose(model.predict(x), before)
    assert np.array_equal(frozen.predict(x), before)
    again = model.freeze()             # a new freeze sees the new weights
    assert np.abs(again.predict(x) - model.predict(x)).max() < 1e-5
    with pytest.raises(ValueError, match="read-only"):
        frozen.params["hidden1.W"][0, 0] = 1.0
    assert np.array_equal(frozen.predict(x), before)
    assert repr(frozen).startswith("<FrozenModel 'mnist_mlp' backend=cpu")


def test_with_nothing_to_pack_a_frozen_model_runs_the_model_s_own_module():
    model = nngraph.compile("specs/lenet5.yaml", backend="cpu", seed=2)   # dense W < PACK_MIN
    x = _inputs(model, 4)
    want = model.predict(x)
    frozen = model.freeze()
    assert not frozen.executor.frozen and frozen.executor.module is model.executor.module
    assert frozen.executor.packed == {} and frozen.executor.flat_params is not \
        model.executor.flat_params
    model.params["c1.W"][...] = 0
    assert np.array_equal(frozen.predict(x), want)


def test_a_frozen_model_checks_its_inputs_and_keeps_layer_state():
    model = nngraph.compile("specs/mnist_mlp.yaml", backend="cpu", seed=2)
    frozen = model.freeze()
    x = _inputs(model, 8)
    x["image"][3, 5] = np.nan
    with pytest.raises(nngraph.DataError, match="NaN"):
        frozen.predict(x)
    with pytest.raises(nngraph.DataError):
        frozen.predict(np.zeros((4, 783), np.float32))
    ref = nngraph.compile("specs/vgg_blocks.yaml", backend="reference", seed=0)
    frozen = ref.freeze()
    assert frozen.backend == "reference"
    x = _inputs(ref, 2)
    want = ref.predict(x)
    for arrays in ref.state.values():       # batchnorm's running statistics, copied
        for v in arrays.values():
            v += 1.0
    assert np.array_equal(frozen.predict(x), want)
