"""Network -> lowered forward graph: one node per primitive op.

A layer's `activation:` becomes a node of its own (`c1` then `c1:relu`), so that autodiff
and fusion see only primitive ops; consumers and outputs are rewired to the activation's
node. Each node records the layer that owns its parameters (`layer`) so parameters keep
their spec names (`c1.W`); a node that borrows parameters of other layers (spec/borrow.py)
reads them under its own local names ('W0' -> 'enc1.W').
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir import IRGraph, Node
from ..ops import REGISTRY

if TYPE_CHECKING:     # annotations only: a Network draws itself through viz, which reads programs
    from ..graph import Network


def lower(net: Network) -> tuple[IRGraph, dict]:
    """Returns (graph, value_of): value_of maps a spec name to the node holding its value."""
    g = IRGraph()
    value_of = {}
    for name in net.order():
        d = net.node(name)
        inputs = [value_of[i] for i in d["inputs"]]
        common = dict(shape=tuple(d["shape"]), dtype=d["dtype"], layer=name,
                      cluster=tuple(d["cluster"] or ()))
        if d["kind"] == "input":
            g.add(name, Node("input", None, {}, [], {}, {}, **common))
            value_of[name] = name
            continue
        own = {p: f"{name}.{p}" for p in d["params"]}
        g.add(name, Node(d["kind"], d["op"], d["attrs"], inputs,
                         {**own, **d.get("borrowed", {})},
                         {s: f"{name}.{s}" for s in d["state"]}, **common))
        for i in inputs:
            g.add_edge(i, name)
        value_of[name] = name
        if d["activation"] is not None:
            act_name, act_attrs = d["activation"]
            node = f"{name}:{act_name}"
            g.add(node, Node("layer", REGISTRY[act_name], act_attrs, [name], {}, {}, **common))
            g.add_edge(name, node)
            value_of[name] = node
    return g, value_of
