"""Every CUDA kernel that the specs' networks launch compiles to PTX for a real GPU
(sm_80), in float32 and float64: numba-cuda's typing and lowering for the hardware, which
the simulator (it runs kernels as Python) never exercises. tools/cuda_ptx.py runs the
networks on a stand-in device whose launches compile instead of running. Needs NVVM (the
CUDA toolkit, or pip's nvidia-cuda-nvcc); without it the test says so and skips."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _nvvm_found() -> bool:
    probe = "from numba.cuda.cudadrv import nvvm; nvvm.NVVM()"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, "-c", probe], env=env,
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _nvvm_found(), reason="no NVVM (CUDA toolkit) to compile PTX with")
def test_every_kernel_of_every_spec_compiles_for_a_gpu():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "cuda_ptx.py"),
                           "--dtype", "float32,float64"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert ", 0 failed" in proc.stdout
