"""The whole compilation, from a spec's text to a target's module, as one list of named passes.

PASSES below is that list, stage by stage, in the order the passes run. Each pass is a
function from its stage's state to that state, with what the pass made added; the module
that owns a stage implements its passes with `@implements(stage, name)` and runs them with
`run(stage, state)`:

    spec      nngraph/spec/__init__.py     SpecState: text or data -> Network
    program   nngraph/program.py           ProgramState: Network -> graph with its backward
    cpu       backends/cpu/codegen.py      the CPUCodegen: program -> module source
    cuda      backends/cuda/codegen.py     the CUDACodegen: program -> module source

This module imports none of them, so that every stage can use it. NNGRAPH_DEBUG=passes
prints, to stderr, what each pass made; `nngraph compile --passes` prints the list.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

PASSES = (
    ("spec", "parse", "text or data -> Source: the data with the line and column of every "
                      "key and value (spec/source.py)"),
    ("spec", "build", "Source -> Network: sections checked, blocks expanded, layers "
                      "connected, shapes inferred, the whole network checked (spec/build.py)"),
    ("program", "lower", "Network -> a graph of primitive ops: an activation becomes a node "
                         "of its own (passes/lower.py)"),
    ("program", "autodiff", "+ the backward: a vjp node per node a gradient reaches, seeded "
                            "at the losses (passes/autodiff.py)"),
    ("cpu", "fuse", "-> fused groups: an op with its elementwise epilogue (passes/fuse.py)"),
    ("cpu", "merge", "a conv2d that only a 2x2 max pooling reads pools in its copy back, in "
                     "evaluate and predict (lower/conv2d.py)"),
    ("cpu", "layout", "the convs that unfold their input in whole padded rows in evaluate "
                      "and predict (lower/conv2d.py)"),
    ("cpu", "schedule", "per driver (train, evaluate, predict): the groups it runs, in order"),
    ("cpu", "emit", "per driver: each group's lowering (backends/cpu/lower/) as source lines"),
    ("cpu", "memory", "per driver: its buffers packed into one arena by live range "
                      "(passes/plan_memory.py)"),
    ("cpu", "source", "the module: the kernels, and the drivers that call them"),
    ("cuda", "fuse", "-> fused groups, as for the cpu (passes/fuse.py)"),
    ("cuda", "schedule", "per driver: the groups it runs, in order"),
    ("cuda", "emit", "per driver: each group's lowering (backends/cuda/lower/) as source "
                     "lines; a group without one runs its numpy rule on host copies"),
    ("cuda", "memory", "per driver: its buffers packed into one device arena by live range"),
    ("cuda", "source", "the module: @cuda.jit kernels with their launchers, and the drivers"),
)

_DONE: dict = {}        # (stage, name) -> (function, show)


def implements(stage: str, name: str, show: Callable | None = None):
    """Register the decorated function as pass `name` of `stage` (a row of PASSES); `show`
    gives the lines NNGRAPH_DEBUG=passes prints of the state after it."""
    if (stage, name) not in {(s, n) for s, n, _ in PASSES}:
        raise ValueError(f"no pass {name!r} in stage {stage!r} of nngraph/pipeline.py PASSES")

    def register(fn):
        _DONE[stage, name] = (fn, show)
        return fn
    return register


def reuse(stage: str, other: str, names) -> None:
    """Passes `names` of `stage` are those of stage `other` (what they do and show): the cuda
    stage's fuse, schedule, emit, memory and source are the cpu stage's, over other
    lowerings."""
    for name in names:
        fn, show = _DONE[other, name]
        implements(stage, name, show)(fn)


def run(stage: str, state):
    """Run the passes of `stage` over `state`, in the order of PASSES."""
    debug = "passes" in os.environ.get("NNGRAPH_DEBUG", "").split(",")
    for s, name, doc in PASSES:
        if s != stage:
            continue
        if (s, name) not in _DONE:
            raise RuntimeError(f"pass {name!r} of stage {stage!r} has no implementation")
        fn, show = _DONE[s, name]
        state = fn(state)
        if debug:
            _dump(stage, name, doc, show(state) if show else [])
    return state


def _dump(stage, name, doc, lines, most: int = 200):
    print(f"── {stage}: {name}: {doc}", file=sys.stderr)
    for line in lines[:most]:
        print(f"   {line}", file=sys.stderr)
    if len(lines) > most:
        print(f"   ... {len(lines) - most} more", file=sys.stderr)


def listing() -> str:
    """Every pass, stage by stage, as `nngraph compile --passes` prints it."""
    lines, last = [], None
    for stage, name, doc in PASSES:
        lines.append(f"{stage if stage != last else '':<8} {name:<9} {doc}")
        last = stage
    return "\n".join(lines) + "\n"
