"""The CPU backend: fused groups lowered to Numba kernels and plain-Python drivers.

    codegen.py      the generated module: a kernel per fused group, three drivers
    stages.py       the cpu passes of nngraph/pipeline.py that CPUCodegen runs
    site.py         what a lowering sees of its group (buffers, shapes, gradients)
    module.py       generated modules as files under the cache directory, imported
    lower/          what each op's group becomes in generated source, one file per op
    calls.py        what each group runs, read off the drivers (pictures, profiles)
    executor.py     CPUExecutor: arenas, parameters, the runs of train, evaluate, predict
    compiler.py     the first compile, on two processes (compile_worker.py the second)
    fast_path.py    drivers that call the compiled kernels without numba's dispatch
    parallel.py     the second thread that runs half a batch
    scheduler.py    one core or two, chosen by timing each kind of run
"""
from .executor import CPUExecutor

__all__ = ["CPUExecutor"]
