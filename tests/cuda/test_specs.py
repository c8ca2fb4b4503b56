"""Every spec in specs/ on backend="cuda" against the reference backend: the forward (the
loss, and predict after the steps), gradients and three optimizer steps, float64 at 1e-9
(two float32 cases at 1e-4).

The simulator runs one Python thread per CUDA thread, so the networks are shrunk where that
is too slow: inputs longer than 16 along an axis get 16, images 4x4 (LeNet-5's 16x16),
sequences 4 steps, a layer of more than 8 units gets 8 (or the shrunk size of the input it must
reproduce, as an autoencoder's output does), a convolution of more than 4 filters gets 4,
batches are 2; the layers of blocks and a block's own numbers are shrunk alike. Ops, layers,
activations, losses and optimizers are the spec's own."""
import os

import numpy as np
import pytest
import yaml

import nngraph
from nngraph.backends.cuda.lower import HOST_ONLY
from nngraph.cli_tools import random_batch

# numpy's 64-bit scalars warn where the simulator's hashes wrap, as the GPU's do on purpose
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = sorted(f for f in os.listdir(os.path.join(ROOT, "specs")) if f.endswith((".yaml", ".json")))

FILTERS, UNITS = 4, 8           # the most filters and units a layer keeps


def shrunk(name: str) -> dict:
    with open(os.path.join(ROOT, "specs", name)) as f:
        spec = yaml.safe_load(f)        # JSON is YAML
    sizes = {}
    for d in spec["inputs"].values():
        shape = list(d.get("shape", []))
        if len(shape) == 2 or (len(shape) == 1 and str(d.get("dtype", "")).startswith("int")):
            shape[0] = min(shape[0], 4)          # a sequence: 4 steps
        for k, s in enumerate(shape):
            if s > 16:
                sizes[s] = shape[k] = 16
            elif len(shape) == 3 and k > 0 and s > 4 and name != "lenet5.yaml":
                shape[k] = 4        # an image: 4x4 (LeNet-5's two 5x5 convs need 16x16)
        if "shape" in d:
            d["shape"] = shape
    for block in spec.get("blocks", {}).values():
        block["params"] = {k: _fewer(k, v, FILTERS) for k, v in block.get("params", {}).items()}
        for layer in block["layers"]:
            _shrink_layer(layer, sizes)
    dense = None                # the last dense layer shrunk, while only its value flows on
    for layer in spec["layers"]:
        if _shrink_layer(layer, sizes):
            dense = layer
        elif layer.get("op") == "reshape" and len(layer.get("shape", ())) == 3 and dense:
            # a generator's dense -> reshape to C x 7 x 7 -> two stride-2 transposed convs to
            # 28 x 28: 2 x 2 x 2, which they take to 8 x 8, and its real images 8 x 8 too
            dense["units"], layer["shape"] = 8, [2, 2, 2]
            for d in spec["inputs"].values():
                if len(d.get("shape", ())) == 3:
                    d["shape"] = d["shape"][:1] + [8, 8]
        elif "units" in layer or "in" in layer:
            dense = None
    return spec


def _fewer(key, value, most):
    """value capped at `most` where it is a count of filters (or a block's number)."""
    return min(value, most) if isinstance(value, int) and not isinstance(value, bool) \
        and key not in ("kernel", "stride", "padding", "dilation", "groups") else value


def _shrink_layer(layer: dict, sizes: dict) -> bool:
    """Fewer units and filters, in place; whether its units were shrunk."""
    if "filters" in layer:
        layer["filters"] = _fewer("filters", layer["filters"], FILTERS)
    units = layer.get("units")
    if isinstance(units, int) and units > UNITS:
        layer["units"] = sizes.get(units, UNITS)
        return True
    return False


def _close(got, want, tol, what):
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("name,dtype", [(s, "float64") for s in SPECS] +
                         [("conv_autoencoder.yaml", "float32"),
                          ("mnist_mlp_dropout.yaml", "float32")])
def test_spec_matches_the_reference(name, dtype, tmp_path):
    path = tmp_path / name.replace(".json", ".yaml")
    path.write_text(yaml.safe_dump(shrunk(name), sort_keys=False))
    tol = 1e-9 if dtype == "float64" else 1e-4
    m = nngraph.compile(str(path), backend="cuda", seed=0, dtype=dtype)
    r = nngraph.compile(str(path), backend="reference", seed=0, dtype=dtype)
    gen = m.executor.gen
    on_host = set().union(*(gen.reference_ops(mode) for mode in gen.drivers))
    assert on_host <= set(HOST_ONLY), f"{name}: groups run their numpy rule on host copies: " \
                                      f"{sorted(on_host - set(HOST_ONLY))}"
    batch = random_batch(m.net, 2, np.random.default_rng(1))
    features = {k: batch[k] for k in m.net.feature_inputs}
    gm, gr = m.gradients(batch), r.gradients(batch)
    assert set(gm) == set(gr)
    for k in gr:
        _close(gm[k], gr[k], tol, f"gradient of {k}")
    for _ in range(3):
        assert m.train_step(batch) == pytest.approx(r.train_step(batch), rel=tol, abs=tol)
    for k in r.params:
        _close(m.params[k], r.params[k], tol, f"{k} after 3 steps")
    _same_predictions(m, r, features, tol)          # batchnorm: the running statistics


def _same_predictions(m, r, features, tol):
    got, want = m.predict(features), r.predict(features)
    for key in (want if isinstance(want, dict) else [None]):
        _close(got[key] if key else got, want[key] if key else want, tol, f"predict {key}")
