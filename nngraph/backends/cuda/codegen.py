"""Generate the CUDA module of a Program: a @cuda.jit kernel and its launcher per fused group
that has a CUDA lowering (lower/), and drivers (train, evaluate, predict) that call the
launchers and the kernels of kernels/cuda on views of one device arena.

The CUDA codegen is the CPU one with other lowerings and another module text: the same
fusion groups, schedule, memory plan, driver rendering and kernel table (backends/cpu/
codegen.py, the `cuda` stage of nngraph/pipeline.py). A group without a CUDA lowering runs
its numpy rule through `R` on host copies (runtime.py), correct and slow, and `nngraph
compile --backend cuda` shows it so.
"""
from __future__ import annotations

from ... import pipeline
from ..cpu import kernel_modules
from ..cpu.codegen import CPUCodegen   # (its import registers the cpu passes reused below)
from . import lower
from .lower import Launch

class CUDACodegen(CPUCodegen):
    lowerings = lower.REGISTRY
    stage = "cuda"
    kernel_package = "nngraph.kernels.cuda"     # called `_<module>.<function>` as on the CPU

    def __init__(self, program, dtype):
        self.pooled, self.wide = {}, set()      # the CPU's conv rewrites: none here
        super().__init__(program, dtype)

    def _kernel_source(self, result, header: str) -> str:
        assert isinstance(result, Launch), result
        args = ", ".join(result.args)
        passed = [f"_flat({a})" if result.flat else a for a in result.args]
        scalars = list(result.scalars)
        return "\n".join(
            ["@cuda.jit", f"def __KERNEL___gpu({', '.join(result.args + scalars)}):",
             f"    for i in range(cuda.grid(1), {result.size}, cuda.gridsize(1)):"] +
            ["    " + line for line in result.body] +
            ["", "", f"def __KERNEL__({args}):", f'    """{header}"""'] +
            [f"    {name} = {expr}" for name, expr in result.scalars.items()] +
            [f"    __KERNEL___gpu[_grid({result.size})]"
             f"({', '.join(passed + scalars)})"] +
            ["    " + line for line in result.host] +
            ([] if any(line.startswith("return") for line in result.host) else
             ["    return 0.0"]) + [""])

    def source(self) -> str:
        lines = self._doc_head("CUDA code")
        body = "\n\n".join(self.kernels.values())
        drivers = "\n\n".join(self.drivers.values())
        used = [f"{m} as {kernel_modules.alias(m)}"
                for m in kernel_modules.used(body + drivers, self.kernel_package)]
        lines += ['"""', "import math", "", "import numpy as np", "from numba import cuda", ""]
        if used:
            lines.append("from nngraph.kernels.cuda import " + ", ".join(used))
        lines += ["from nngraph.kernels.cuda.launch import grid as _grid", "",
                  f"_f = np.{self.dtype.name}", "", "",
                  "def _flat(a):", "    return a.reshape(a.size)", "", "",
                  "@cuda.jit", "def _add_into_gpu(a, b):",
                  "    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):",
                  "        a[i] += b[i]", "", "",
                  "def _add_into(a, b):",
                  "    _add_into_gpu[_grid(a.size)](_flat(a), _flat(b))", "", "", ""]
        return "\n".join(lines) + body + "\n\n" + drivers


pipeline.reuse("cuda", "cpu", ("fuse", "schedule", "emit", "memory", "source"))
