"""What each fused group runs on the CPU backend: what its lowering gave (a Kernel, an Extern,
a View or None, recorded by the codegen), and the driver lines that call it.

    >>> calls = group_calls(build_program(nngraph.load("specs/lenet5.yaml")))
    >>> calls["c1_relu"].runs, calls["c1_relu"].callees
    ('hand-written', ['_conv.conv2d_forward', 'k_c1_relu_epilogue'])

A group runs one of three kinds of code, or none:
    generated      njit kernels of the generated module (`k_<group>...`)
    hand-written   a kernel of kernels/cpu (`_conv.`, `_pool.`), with generated epilogues
    reference      the op's numpy reference rule, called from the driver (`R.forward`, ...)
    view           nothing: its output is a view of its input (flatten, reshape)
The pictures (viz_program), `nngraph compile` and `nngraph bench --profile` all use this.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ...passes.fuse import Group
from .codegen import CPUCodegen
from .lower import Extern, Kernel, View

MODES = ("train", "evaluate", "predict")
_CALLEE = re.compile(r"([A-Za-z_][\w.]*)\(")
_NODE = re.compile(r"""R\.\w+\((['"])(.*?)\1""")


@dataclass
class GroupCalls:
    group: Group
    lines: list = field(default_factory=list)     # the driver lines, stripped
    lowered: object = "unknown"   # what its lowering gave: Kernel, Extern, View or None

    @property
    def callees(self) -> list[str]:
        """The function each driver line calls: 'k_logits', '_conv.conv2d_forward', 'R.loss'."""
        return [m.group(1) for m in map(_CALLEE.search, self.lines) if m]

    @property
    def runs(self) -> str:
        if self.lowered is None:
            return "reference"
        if isinstance(self.lowered, View):
            return "view"
        if isinstance(self.lowered, Kernel):
            return "generated"
        if isinstance(self.lowered, Extern):
            return "hand-written" if any("." in c.function for c in self.lowered.calls) \
                else "generated"
        callees = self.callees
        if not callees and self.lines and all(line.startswith("#") for line in self.lines):
            return "view"
        if any(c.startswith("R.") for c in callees):
            return "reference"
        if any("." in c for c in callees):
            return "hand-written"
        return "generated"

    @property
    def kernels(self) -> list[str]:
        """Generated kernels this group calls, in order."""
        return [c for c in self.callees if c.startswith("k_")]

    @property
    def reference_nodes(self) -> list[str]:
        return [m.group(2) for m in map(_NODE.search, self.lines) if m]

    def describe(self) -> str:
        """One line: 'k_logits', '_conv.conv2d_forward + k_c1_relu_epilogue', 'R.forward(pool)'."""
        if self.runs == "view":
            return "; ".join(line.lstrip("# ") for line in self.lines)
        parts = []
        for line, callee in zip(self.lines, self.callees):
            node = _NODE.search(line)
            parts.append(f"{callee}({node.group(2)})" if node else callee)
        return " + ".join(parts) or "(nothing to run)"


def callee_kind(callee: str) -> str:
    """generated / hand-written / reference for one called name."""
    if callee.startswith("R."):
        return "reference"
    return "hand-written" if "." in callee else "generated"


class _Recording:
    """A codegen (CPUCodegen or one built on it) that keeps the driver lines of each group,
    per driver."""

    def __init__(self, program, dtype):
        self.emitted_lines = {mode: [] for mode in MODES}
        super().__init__(program, dtype)

    def _emit(self, group, index, mode):
        lines = super()._emit(group, index, mode)
        self.emitted_lines[mode].append((group, lines, self.per_mode[mode].runs[-1]))
        return lines

    @property
    def emitted(self) -> dict:
        """{mode: [(group, its driver lines as the module has them, what it lowered to)]}"""
        return {mode: [(group, [line.source(self.final_names, self.refs) for line in lines],
                        lowered) for group, lines, lowered in emitted]
                for mode, emitted in self.emitted_lines.items()}


def codegen(program, dtype="float32", base=CPUCodegen) -> CPUCodegen:
    """The codegen of `program` (`base`: CPUCodegen, or the CUDA one built on it), with
    `.emitted[mode]` = [(group, driver lines)]."""
    return type(f"Recording{base.__name__}", (_Recording, base), {})(program, np.dtype(dtype))


def group_calls(program, dtype="float32", gen=None) -> dict[str, GroupCalls]:
    """{group name: GroupCalls} in execution order. A group's lines are those of the train
    driver; groups that only evaluate or predict run are taken from those drivers."""
    gen = gen or codegen(program, dtype)
    out: dict[str, GroupCalls] = {}
    for mode in MODES:
        for group, lines, lowered in gen.emitted[mode]:
            if group.name not in out:
                out[group.name] = GroupCalls(group, lines, lowered)
    order = {g.name: i for i, g in enumerate(gen.groups)}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


def callees(driver_source: str) -> list[str]:
    """The function each line of a driver's source calls, in order."""
    lines = [line.strip() for line in driver_source.splitlines()[1:]]
    return [m.group(1) for m in map(_CALLEE.search, lines) if m]


def call_sites(gen, mode="train") -> list[tuple[str, str]]:
    """(callee, group name) for every line of one driver, in the order it runs them."""
    return [(c, group.name) for group, lines, _ in gen.emitted[mode]
            for c in GroupCalls(group, lines).callees]


def arena_bytes(gen, mode: str) -> tuple[int, int]:
    """(float bytes, int bytes) per sample of one driver's arena."""
    _, sizes = gen.plans[mode]
    return sizes["float"] * gen.dtype.itemsize, sizes["int"] * np.dtype(np.int64).itemsize
