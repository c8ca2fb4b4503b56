"""backend="cuda" where nothing can run CUDA kernels (CI: no GPU, no simulator in this
process): one clear line naming what is missing and how to install it, never a traceback."""
import os
import subprocess
import sys

import pytest

import nngraph
from nngraph.backends import cuda
from nngraph.errors import NNGraphError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "xor_mlp.yaml")
NO_DEVICE = not cuda.device_status()[0]


@pytest.mark.skipif(not NO_DEVICE, reason="this machine can run CUDA kernels")
def test_compile_for_cuda_without_a_gpu_says_what_is_missing():
    with pytest.raises(NNGraphError) as info:
        nngraph.compile(SPEC, backend="cuda")
    message = str(info.value)
    assert "needs an NVIDIA GPU" in message and "pip install 'nngraph[cuda]'" in message
    assert "NUMBA_ENABLE_CUDASIM=1" in message and "\n" not in message


@pytest.mark.skipif(not NO_DEVICE, reason="this machine can run CUDA kernels")
def test_cli_with_backend_cuda_without_a_gpu_is_one_line():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-m", "nngraph", "train", SPEC, "--backend", "cuda",
                           "--epochs", "1"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "needs an NVIDIA GPU" in proc.stderr and "nngraph[cuda]" in proc.stderr, proc.stderr


def test_compile_backend_cuda_writes_the_cuda_module_without_a_gpu(tmp_path):
    """The CUDA module is source: `nngraph compile --backend cuda` writes and describes it
    on any machine, its groups named with what runs them."""
    proc = subprocess.run([sys.executable, "-m", "nngraph", "compile", SPEC, "--backend", "cuda",
                           "--emit", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    source = (tmp_path / "xor_mlp_float32_cuda.py").read_text()
    assert '"""nngraph generated CUDA code for spec' in source
    assert "@cuda.jit" in source and "_gemm.gemm(" in source and "def train(R," in source
    index = (tmp_path / "index.txt").read_text()
    assert "xor_mlp: generated CUDA code (float32)" in index
    assert "reference      the op's numpy rule, called from the driver on host copies" in index


@pytest.mark.parametrize("spec", sorted(f for f in os.listdir(os.path.join(ROOT, "specs"))
                                         if f.endswith((".yaml", ".json"))))
def test_every_spec_has_a_cuda_module(spec):
    """Every spec's CUDA module is generated and is valid Python with its three drivers
    (the specs run under the simulator in tests/cuda, those small enough for it)."""
    import ast

    from nngraph.backends.cuda.codegen import CUDACodegen
    from nngraph.program import build_program
    gen = CUDACodegen(build_program(nngraph.load(os.path.join(ROOT, "specs", spec))), "float32")
    tree = ast.parse(gen.source())
    functions = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert {"train", "evaluate", "predict"} <= functions


def test_device_is_only_for_the_cuda_backend():
    with pytest.raises(nngraph.NNGraphError, match="device=0 picks a GPU of backend 'cuda'"):
        nngraph.compile(SPEC, backend="cpu", device=0)


def test_viz_draws_the_cuda_modules_fused_groups_without_a_gpu(tmp_path):
    out = tmp_path / "lenet5.dot"
    proc = subprocess.run([sys.executable, "-m", "nngraph", "viz",
                           os.path.join(ROOT, "specs", "lenet5.yaml"), "--fused", "--backend",
                           "cuda", "-o", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    dot = out.read_text()
    assert "kernels/cuda conv2d_forward" in dot and "generated @cuda.jit kernel" in dot
    assert "kernels/cpu" not in dot
