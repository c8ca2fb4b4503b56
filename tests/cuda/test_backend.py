"""backend="cuda" where numba can run CUDA kernels (here: its simulator)."""
import os

import pytest

import nngraph
from nngraph.backends import cuda
from nngraph.errors import NNGraphError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_device_status_names_the_simulator_or_the_gpu():
    usable, what = cuda.device_status()
    assert usable
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        assert "simulator" in what


def test_compile_says_in_one_line_that_the_code_generator_is_missing():
    with pytest.raises(NNGraphError, match="not yet the code generator") as info:
        nngraph.compile(os.path.join(ROOT, "specs", "xor_mlp.yaml"), backend="cuda")
    assert "\n" not in str(info.value)
