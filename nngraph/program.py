"""The compilation pipeline, top to bottom: spec -> Network -> lowered graph -> backward.

    program = build_program(net)      # what every backend executes

Backends differ only in how they run a Program: `reference` interprets it with numpy; the
fused backends turn its groups into kernels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from .passes.autodiff import autodiff
from .passes.lower import lower

if TYPE_CHECKING:     # annotations only: a Network draws itself through viz, which reads programs
    from .graph import Network, ParamInfo


@dataclass
class Program:
    net: Network
    graph: nx.DiGraph             # lowered forward nodes plus grad:/vjp: backward nodes
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


def build_program(net: Network, of: str | None = None, wrt_inputs=()) -> Program:
    """The program for training (gradients of the weighted losses), or, with `of` (an
    output name) and `wrt_inputs`, for the gradient of that output's sum."""
    params = net.param_table()
    g, value_of = lower(net)
    if of is None:
        seeds = {l: net.node(l)["attrs"]["weight"] for l in net.losses}
    else:
        seeds = {value_of[of]: "ones"}
    g = autodiff(g, seeds, params, wrt_inputs)
    state = {}
    for name in net.order():
        for sname, spec in net.node(name).get("state", {}).items():
            state[f"{name}.{sname}"] = (name, spec)
    return Program(net, g, g.graph["forward"], g.graph["backward"],
                   {o: value_of[o] for o in net.outputs}, list(net.losses), params, state)
