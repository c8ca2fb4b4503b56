import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

# pytest-xdist already keeps both cores busy: a second compiling process per model would
# only compete with the other test worker (test_parallel_compile.py turns it on).
os.environ.setdefault("NNGRAPH_COMPILE_JOBS", "1")

# nngraph's kernels load before any test module imports PyTorch (an oracle of many tests),
# as in a process that runs nngraph alone: MKL then takes its own Intel OpenMP threads, on
# which the optimizer update can run too (kernels/cpu/team.py). PyTorch's GNU OpenMP, loaded
# first, would become MKL's.
from nngraph.kernels.cpu import team  # noqa: E402,F401

# tests/cuda runs in a process of its own under numba's CUDA simulator (or on a GPU):
# NUMBA_ENABLE_CUDASIM must be set before numba is imported, which this process has done.
# tests/test_cuda_simulated.py starts that process.
collect_ignore = ["cuda"]


def pytest_collection_modifyitems(config, items):
    """The simulator's CUDA files first, longest first (test_specs.py takes minutes):
    pytest-xdist hands tests out in this order, so they run beside the rest of the suite
    instead of after it."""
    def weight(item):
        if "test_cuda_simulated" not in item.nodeid:
            return 1
        if "test_specs" not in item.nodeid:
            return -1
        return -3 if "test_specs.py-conv" in item.nodeid else -2
    items.sort(key=weight)
