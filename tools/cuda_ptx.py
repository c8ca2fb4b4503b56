"""Compile every CUDA kernel a network launches to PTX for a real GPU, on a machine without
one: the check of numba-cuda's typing and lowering that the simulator cannot give (it runs
the kernels as Python).

The networks run on a stand-in device: device arrays are numpy arrays, and each kernel
launch compiles the kernel for its arguments' types with numba's NVVM (cuda.compile_ptx)
instead of running it. The values are meaningless; every kernel of every driver (train,
evaluate, predict) is reached as a real run would reach it, with the argument types a real
run would give it. Needs NVVM (the CUDA toolkit, or pip's nvidia-cuda-nvcc); run it
without NUMBA_ENABLE_CUDASIM.

    python tools/cuda_ptx.py [SPEC ...] [--dtype float32|float64] [--cc 8.0]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


class FakeDeviceArray(np.ndarray):
    """A host array standing in for a device array."""

    def copy_to_host(self, out=None, stream=0):
        if out is None:
            return np.array(self)
        out[...] = self
        return out

    def copy_to_device(self, ary, stream=0):
        self[...] = ary

    def reshape(self, *shape, **kw):
        return np.ndarray.reshape(self, *shape, **kw).view(FakeDeviceArray)


def _fake(a) -> FakeDeviceArray:
    return np.ascontiguousarray(a).view(FakeDeviceArray)


def types_float64():
    from numba import types
    return types.float64


class PTXLauncher:
    """Stands in for numba's launch configuration: compiles instead of launching."""

    compiled: dict = {}
    failures: list = []
    doubles: list = []

    def __init__(self, dispatcher, cc):
        self.dispatcher, self.cc = dispatcher, cc

    def __call__(self, *args):
        from numba import cuda, typeof
        types = tuple(typeof(np.asarray(a) if isinstance(a, np.ndarray) else a)
                      for a in args)
        fn = self.dispatcher.py_func
        key = (fn, types)
        if key in self.compiled:
            return
        try:
            ptx, _ = cuda.compile_ptx(fn, types, cc=self.cc)
            self.compiled[key] = len(ptx)
            single = all(getattr(t, "dtype", t) != types_float64() for t in types)
            if single and ".f64" in ptx:      # float64 arithmetic in a float32 kernel
                self.doubles.append(fn.__qualname__)
        except Exception as e:      # reported with the kernel's name, not raised
            self.compiled[key] = 0
            self.failures.append((fn.__qualname__, types, f"{type(e).__name__}: {e}"))


def install(cc=(8, 0)) -> None:
    """Make numba.cuda's arrays host arrays and its launches PTX compiles."""
    from numba import cuda
    from numba.cuda import dispatcher
    from nngraph.backends import cuda as backend
    cuda.to_device = lambda a, stream=0, copy=True: _fake(a)
    cuda.device_array = lambda shape, dtype=np.float64, stream=0: \
        np.zeros(shape, dtype).view(FakeDeviceArray)
    dispatcher.CUDADispatcher.__getitem__ = lambda self, args: PTXLauncher(self, cc)
    # device functions are compiled for the current device's compute capability
    dispatcher.get_current_device = lambda: type("Device", (), {"compute_capability": cc})
    backend.require = lambda: f"a stand-in device compiling PTX for sm_{cc[0]}{cc[1]}"
    backend.select = lambda device: backend.require()


def check(path: str, dtype: str, batch: int = 3) -> None:
    """Run spec `path`'s drivers on the stand-in device (train, evaluate, predict)."""
    import nngraph
    from nngraph.cli_tools import random_batch
    m = nngraph.compile(path, backend="cuda", dtype=dtype, seed=0)
    data = random_batch(m.net, batch, np.random.default_rng(0))
    if m.program.losses:
        m.train_step(data)
        m.evaluate(data)
    m.predict({k: data[k] for k in m.net.feature_inputs})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--dtype", default="float32", help="float32, float64 or both, "
                        "comma-separated")
    parser.add_argument("--cc", default="8.0", help="compute capability to compile for")
    args = parser.parse_args(argv)
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        sys.exit("cuda_ptx: run without NUMBA_ENABLE_CUDASIM (it compiles for a real GPU)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    specs = args.specs or sorted(os.path.join(root, "specs", f)
                                 for f in os.listdir(os.path.join(root, "specs"))
                                 if f.endswith((".yaml", ".json")))
    install(tuple(int(x) for x in args.cc.split(".")))
    for dtype in args.dtype.split(","):
        for path in specs:
            before = len(PTXLauncher.compiled)
            check(path, dtype)
            print(f"{os.path.basename(path):30s} {dtype}  {len(PTXLauncher.compiled) - before:3d} "
                  "new kernels compiled", flush=True)
    for name in sorted(set(PTXLauncher.doubles)):
        print(f"float64 arithmetic in a kernel without float64 arguments: {name}")
    for name, types, error in PTXLauncher.failures:
        print(f"FAILED {name}{types}: {error.splitlines()[0][:300]}")
    print(f"{len(PTXLauncher.compiled)} kernels, {len(PTXLauncher.failures)} failed "
          f"({args.dtype}, sm_{args.cc.replace('.', '')})")
    return 1 if PTXLauncher.failures else 0


if __name__ == "__main__":
    sys.exit(main())
