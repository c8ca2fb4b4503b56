"""The cpu stage of nngraph/pipeline.py: the passes that turn a program into the CPU
module, each a step of CPUCodegen (codegen.py), which runs them in the listed order."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ... import pipeline
from ...passes.fuse import fuse
from .lower.conv2d import runs_wide
from .site import Site

if TYPE_CHECKING:
    from .codegen import CPUCodegen


class ModeState:
    """One driver's bookkeeping between the passes: its groups, lines and buffer uses."""

    def __init__(self):
        self.groups, self.lines = [], []
        self.uses, self.shapes, self.contributions, self.aliases = {}, {}, {}, {}
        self.runs = []          # per group, what its lowering gave: Kernel, Extern, View or None
        self.reference_ops = set()      # the ops of the groups that run their numpy rule


def _show_groups(gen) -> list:
    return [f"{g.name}: {g.kind} {' + '.join(map(str, g.nodes))}" for g in gen.groups]


@pipeline.implements("cpu", "fuse", _show_groups)
def fuse_groups(gen: CPUCodegen) -> CPUCodegen:
    prog = gen.program
    gen.groups = fuse(gen.graph, prog.forward, prog.backward, prog.losses)
    return gen


@pipeline.implements("cpu", "merge", lambda gen: [f"{c} pools {p}" for c, p in gen.pooled.items()])
def merge_conv_pool(gen: CPUCodegen) -> CPUCodegen:
    gen.pooled = gen._pooled_convs()       # {conv group: maxpool node}
    return gen


@pipeline.implements("cpu", "layout", lambda gen: sorted(gen.wide))
def choose_conv_layout(gen: CPUCodegen) -> CPUCodegen:
    gen.wide = {grp.name for i, grp in enumerate(gen.groups)   # run wide in evaluate, predict
                if runs_wide(Site(gen, grp, i))}
    return gen


@pipeline.implements("cpu", "schedule", lambda gen: [
    f"{mode}: {', '.join(g.name for g in st.groups)}" for mode, st in gen.per_mode.items()])
def schedule_drivers(gen: CPUCodegen) -> CPUCodegen:
    for mode in gen.modes:
        gen._enter(mode)
        gen.per_mode[mode].groups = gen._schedule(mode)
    return gen


@pipeline.implements("cpu", "emit", lambda gen: [
    f"{mode}: {len(st.lines)} lines" for mode, st in gen.per_mode.items()])
def emit_drivers(gen: CPUCodegen) -> CPUCodegen:
    for mode in gen.modes:
        gen._emit_driver(mode)
    return gen


@pipeline.implements("cpu", "memory", lambda gen: [
    f"{mode}: {len(buffers)} buffers, {sizes['float']:,} floats and {sizes['int']:,} ints "
    f"per sample" for mode, (buffers, sizes) in gen.plans.items()])
def plan_drivers(gen: CPUCodegen) -> CPUCodegen:
    for mode in gen.modes:
        gen._plan_driver(mode)
    return gen


@pipeline.implements("cpu", "source", lambda gen: [
    f"{len(gen.kernels_by_code)} kernels"] + [f"{m}: {len(d.splitlines())} lines"
                                             for m, d in gen.drivers.items()])
def write_source(gen: CPUCodegen) -> CPUCodegen:
    gen._write_drivers()
    return gen
