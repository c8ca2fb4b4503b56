"""The compilation pipeline, top to bottom: spec -> Network -> lowered graph -> backward.

    program = build_program(net)      # what every backend executes

Backends differ only in how they run a Program: `reference` interprets it with numpy; the
fused backends turn its groups into kernels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx

from . import pipeline
from .ir import IRGraph, Node
from .passes.autodiff import autodiff
from .passes.lower import lower

if TYPE_CHECKING:     # annotations only: a Network draws itself through viz, which reads programs
    from .graph import Network, ParamInfo


@dataclass
class Program:
    net: Network
    graph: IRGraph                # lowered forward nodes plus Grad/Vjp backward nodes (ir.py)
    forward: list                 # forward node order (inputs excluded)
    backward: list                # backward node order
    outputs: dict                 # output name -> node
    losses: list                  # loss nodes
    params: dict                  # 'layer.param' -> ParamInfo
    state: dict                   # 'layer.name' -> (layer node, StateSpec)

    @property
    def trainable(self) -> dict[str, ParamInfo]:
        return {k: p for k, p in self.params.items() if p.trainable}

    def eval_order(self, targets) -> list:
        """Forward nodes needed to compute `targets`, in execution order."""
        need = set(targets)
        for t in targets:
            need |= nx.ancestors(self.graph, t)
        return [n for n in self.forward if n in need]


@dataclass
class ProgramState:
    """What the program stage of the pipeline works on."""
    net: Network
    of: str | None = None        # an output whose sum the backward differentiates, else losses
    wrt_inputs: tuple = ()
    graph: IRGraph | None = None       # the lowered graph, then with its backward
    value_of: dict = field(default_factory=dict)   # spec name -> node holding its value


def _show(s: ProgramState) -> list:
    out = []
    for n in s.graph:
        d = s.graph.node(n)
        if isinstance(d, Node):
            out.append(f"{n}: {d.kind} {getattr(d.op, 'name', '')} <- {', '.join(d.inputs)}")
        else:
            out.append(f"{n}: {d.kind} <- {', '.join(map(str, s.graph.predecessors(n)))}")
    return out


@pipeline.implements("program", "lower", _show)
def lower_network(s: ProgramState) -> ProgramState:
    s.graph, s.value_of = lower(s.net)
    return s


@pipeline.implements("program", "autodiff", _show)
def differentiate(s: ProgramState) -> ProgramState:
    seeds = {l: s.net.node(l)["attrs"]["weight"] for l in s.net.losses} if s.of is None \
        else {s.value_of[s.of]: "ones"}
    s.graph = autodiff(s.graph, seeds, s.net.param_table(), s.wrt_inputs)
    return s


def build_program(net: Network, of: str | None = None, wrt_inputs=()) -> Program:
    """The program for training (gradients of the weighted losses), or, with `of` (an
    output name) and `wrt_inputs`, for the gradient of that output's sum: the program stage
    of nngraph/pipeline.py (lower, autodiff)."""
    s = pipeline.run("program", ProgramState(net, of, tuple(wrt_inputs)))
    state = {}
    for name in net.order():
        for sname, spec in net.node(name).get("state", {}).items():
            state[f"{name}.{sname}"] = (name, spec)
    g = s.graph
    return Program(net, g, g.graph["forward"], g.graph["backward"],
                   {o: s.value_of[o] for o in net.outputs}, list(net.losses),
                   net.param_table(), state)
