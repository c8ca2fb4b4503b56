"""What a process that runs `nngraph predict` or `nngraph eval` loads (tools/results/startup.md):
none of training's modules or kernels, nothing of drawing or of the test oracles, and on a
warm cache it compiles nothing."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nngraph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "lenet5.yaml")

# Runs the command line in a process of its own and says, as the last line of its output,
# which modules it imported, how many kernels numba compiled (cache misses), and which
# kernels it has code for that only the training driver calls.
_CHILD = r"""
import json, sys
from numba.core.dispatcher import Dispatcher
from nngraph.cli import main
code = main(sys.argv[1:])
from nngraph.kernels.cpu import blas
driver = "predict" if sys.argv[1] == "predict" else "evaluate"
ours = [m for name, m in list(sys.modules.items())
        if name.startswith(("nngraph.kernels.cpu.", "nngraph_gen_"))]
compiled = sum(sum(v.stats.cache_misses.values()) for m in ours for v in vars(m).values()
               if isinstance(v, Dispatcher))
train_only = []
for m in ours:
    if m.__name__.startswith("nngraph_gen_"):
        only = set(m.train.__code__.co_names) - set(getattr(m, driver).__code__.co_names)
        for place in [m] + [v for v in vars(m).values() if type(v) is type(m)]:
            train_only += [k for k, v in vars(place).items()
                           if k in only and isinstance(v, Dispatcher) and v.overloads]
print(json.dumps({"code": code, "modules": sorted(sys.modules), "blas": blas.PROVIDER,
                  "compiled": compiled, "train_only": train_only}))
"""

NOT_NEEDED = ("torch", "graphviz", "onnx", "onnxruntime", "sklearn", "nngraph.training",
              "nngraph.viz", "nngraph.kernels.cpu.optim")


def _run(*args, **env):
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, **env))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stdout + proc.stderr[-3000:]
    return report


def _unneeded(report):
    modules = set(report["modules"])
    out = [m for m in NOT_NEEDED if m in modules]
    # numba's typing and lowering rules bring SciPy's linalg; loading cached kernels needs
    # none of them (kernels/cpu/_cache.py). OpenBLAS is reached through SciPy's.
    if report["blas"] == "mkl" and "scipy.linalg" in modules:
        out.append("scipy.linalg")
    return out


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("startup") / "lenet5.nnz")
    nngraph.compile(SPEC, backend="cpu", seed=0).save(path)
    return path


def test_predict_loads_only_what_predict_runs(model_file, tmp_path):
    x = np.random.default_rng(0).random((20, 1, 28, 28), dtype=np.float32)
    np.savez(tmp_path / "x.npz", image=x)
    args = ["predict", model_file, "--input", str(tmp_path / "x.npz")]
    _run(*args, "-o", str(tmp_path / "first.csv"))      # compiles, where nothing did before
    warm = _run(*args, "-o", str(tmp_path / "warm.csv"))
    assert warm["compiled"] == 0 and warm["train_only"] == [], warm
    assert _unneeded(warm) == []
    # numba's own way of loading a cached kernel gives the same predictions
    _run(*args, "-o", str(tmp_path / "numba.csv"), NNGRAPH_NUMBA_PATCHES="-light")
    assert (tmp_path / "warm.csv").read_bytes() == (tmp_path / "numba.csv").read_bytes()
    expected = nngraph.load_model(model_file).predict(x)
    table = np.loadtxt(tmp_path / "warm.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, :10], expected, rtol=1e-5, atol=1e-6)


def test_eval_loads_only_what_evaluate_runs(model_file):
    _run("eval", model_file)
    warm = _run("eval", model_file)
    assert warm["compiled"] == 0 and warm["train_only"] == [], warm
    assert _unneeded(warm) == []
