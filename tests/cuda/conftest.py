"""The CUDA tests: under numba's simulator (NUMBA_ENABLE_CUDASIM=1, set before numba loads;
tests/test_cuda_simulated.py runs this folder so) or on a real GPU."""
import os

import pytest
from numba import cuda

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def pytest_collection_modifyitems(config, items):
    if SIMULATED or cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU, and NUMBA_ENABLE_CUDASIM is not 1")
    for item in items:
        item.add_marker(skip)
