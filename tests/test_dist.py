"""Data-parallel training over MPI (nngraph/dist.py): N ranks under mpirun give the parameters
of one process, on both backends; rank 0 alone speaks and saves; resume works."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nngraph
from nngraph import dist

pytest.importorskip("mpi4py")
SPEC = os.path.join(os.path.dirname(__file__), "..", "specs", "iris_mlp.json")
MPIRUN = shutil.which("mpirun", path=os.path.dirname(sys.executable)) or shutil.which("mpirun")
needs_mpirun = pytest.mark.skipif(MPIRUN is None, reason="no mpirun (pip install mpich)")

# 120 training samples in batches of 17: the last batch holds 1 sample, so under 3 ranks
# two of them hold none of it; 17 is not divisible by 2 or 3 either.
TRAIN = textwrap.dedent("""
    import sys, numpy as np, nngraph
    from nngraph import dist
    backend, dtype, out = sys.argv[1:4]
    model = nngraph.compile(sys.argv[4], backend=backend, dtype=dtype, seed=0)
    model.fit(epochs=2, batch_size=17, verbose=0)
    w = dist.world()
    np.savez(f"{out}_{w.rank if w else 0}.npz", **model.params,
             **{"history/" + k: np.array(v) for k, v in model.history.items()})
""")


def mpirun(n, args, tmp_path, timeout=240):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([MPIRUN, "-n", str(n), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=tmp_path)


@needs_mpirun
@pytest.mark.parametrize("backend,dtype,tol", [("reference", "float64", 1e-12),
                                               ("cpu", "float64", 1e-12),
                                               ("cpu", "float32", 2e-5)])
def test_ranks_train_the_parameters_of_one_process(tmp_path, backend, dtype, tol):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    one = nngraph.compile(SPEC, backend=backend, dtype=dtype, seed=0)
    one.fit(epochs=2, batch_size=17, verbose=0)
    for n in (1, 2, 3):
        r = mpirun(n, [sys.executable, str(script), backend, dtype, f"n{n}", SPEC], tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        for rank in range(n):
            got = np.load(tmp_path / f"n{n}_{rank}.npz")
            for k, v in one.params.items():
                scale = max(1.0, float(np.abs(v).max()))
                assert np.abs(got[k] - v).max() <= tol * scale, (n, rank, k)
            for k, v in one.history.items():      # the epoch's figures are the whole batch's
                np.testing.assert_allclose(got["history/" + k], v, rtol=tol * 10, atol=tol)


@needs_mpirun
def test_cli_train_speaks_and_saves_once_and_resumes(tmp_path):
    out = tmp_path / "iris.nnz"
    cli = [sys.executable, "-m", "nngraph", "train", SPEC, "--out", str(out), "-q"]
    r = mpirun(2, cli + ["--epochs", "2"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("training iris_mlp") == 1
    assert "x 2 processes (data-parallel, MPI)" in r.stdout
    assert nngraph.load_model(str(out)).epoch == 2
    r = mpirun(2, cli + ["--epochs", "3", "--resume", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("resuming") == 1
    resumed = nngraph.load_model(str(out))
    straight = nngraph.compile(SPEC, backend="cpu", seed=0)
    straight.fit(epochs=3, verbose=0)
    assert resumed.epoch == 3
    for k, v in straight.params.items():
        np.testing.assert_allclose(resumed.params[k], v, rtol=1e-4, atol=1e-5)


def test_sum_reduced_losses_are_refused():
    spec = nngraph.load(SPEC).spec
    spec = {**spec, "losses": [{**spec["losses"][0], "reduction": "sum"}]}
    model = nngraph.compile(spec, backend="reference")
    with pytest.raises(dist.DistError, match="reduction: sum"):
        dist.check_trainable(model)


def test_a_launcher_without_mpi4py_gets_one_line(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(dist, "_WORLD", [])
    with pytest.raises(dist.DistError, match=r"pip install nngraph\[dist\]"):
        dist.world()
    monkeypatch.setenv("NNGRAPH_DIST", "0")
    assert dist.world() is None and dist.launched_size() == 1


def test_shares_split_a_batch_as_evenly_as_possible():
    for size in (1, 2, 3, 5):
        for n in (1, 2, 16, 17):
            spans = [dist.World(None, r, size).share(n) for r in range(size)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
            sizes = [hi - lo for lo, hi in spans]
            assert max(sizes) - min(sizes) <= 1
