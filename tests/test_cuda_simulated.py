"""Run tests/cuda under numba's CUDA simulator, each file in a process of its own: the
simulator is chosen when numba is imported, which this process did long ago. One test per
file (test_specs.py in three parts: its convolutional and its generative networks take
most of its time) lets
pytest-xdist spread them over the workers; conftest.py hands them out first."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(f for f in os.listdir(os.path.join(ROOT, "tests", "cuda"))
               if f.startswith("test_") and f.endswith(".py"))
CONV = "vgg_blocks or resnet or lenet5 or inception"
GENERATIVE = "vae or gan or rbm or dbn or contractive or stacked"
RUNS = {f: (f, None) for f in FILES if f != "test_specs.py"}
RUNS.update({"test_specs.py-conv": ("test_specs.py", CONV),
             "test_specs.py-generative": ("test_specs.py", GENERATIVE),
             "test_specs.py-rest": ("test_specs.py", f"not ({CONV} or {GENERATIVE})")})


@pytest.mark.parametrize("name,select", list(RUNS.values()), ids=list(RUNS))
def test_cuda_tests_pass_under_the_simulator(name, select):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         os.path.join(ROOT, "tests", "cuda", name)] + (["-k", select] if select else []),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]
