"""Fusion: partition the forward and backward nodes of a Program into groups, one kernel each.

The rules follow the fusion lattice (ops/base.py Fusion):
- an anchor (dense, conv) absorbs the elementwise op that alone consumes it (its activation):
  one loop applies bias and activation right after the GEMM;
- the backward of such a pair is one group too: the activation's backward is applied to the
  incoming gradient in place, then the anchor's backward runs on it;
- a loss's forward and its backward form one group (softmax + cross-entropy and its
  gradient come out of one pass over the logits);
- everything else is a group of one.
The optimizer update of all parameters is not a graph node; the backend adds it as one kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Vjp, ident
from ..ops.base import Fusion


@dataclass
class Group:
    name: str
    kind: str                         # forward | backward | loss
    nodes: list                       # graph nodes, in execution order
    anchor: str | None = None         # the anchor node of a fused forward/backward pair
    epilogue: str | None = None       # the elementwise node fused after it
    meta: dict = field(default_factory=dict)


def fuse(graph, forward: list, backward: list, losses: list) -> list[Group]:
    """Groups in execution order: forward groups, then backward groups."""
    groups, absorbed = [], set()
    for n in forward:
        if n in absorbed:
            continue
        d = graph.node(n)
        if d.kind == "loss":
            nodes = [n] + ([Vjp(n)] if Vjp(n) in graph else [])
            name = ident(n)                         # loss_1, not loss_loss_1
            groups.append(Group(name if name.startswith("loss") else f"loss_{name}", "loss",
                                nodes, anchor=n))
            continue
        epi = _epilogue(graph, n)
        if epi is not None:
            absorbed.add(epi)
            groups.append(Group(f"{ident(n)}_{graph.node(epi).op.name}", "forward",
                                [n, epi], anchor=n, epilogue=epi))
        else:
            groups.append(Group(ident(n), "forward", [n], anchor=n))
    pairs = {g.epilogue: g.anchor for g in groups if g.epilogue}
    done = set()
    for b in backward:
        if not isinstance(b, Vjp) or b in done:
            continue
        n = b.of
        if graph.node(n).kind == "loss":
            continue                              # computed with the loss's forward
        if n in pairs and Vjp(pairs[n]) in graph:
            anchor = pairs[n]
            done.add(Vjp(anchor))
            groups.append(Group(f"d_{ident(anchor)}_{graph.node(n).op.name}", "backward",
                                [b, Vjp(anchor)], anchor=anchor, epilogue=n))
        elif b not in done:
            groups.append(Group(f"d_{ident(n)}", "backward", [b], anchor=n))
    return groups


def _epilogue(graph, n):
    """The elementwise activation fused into anchor `n`, if the pattern applies."""
    d = graph.node(n)
    if d.kind != "layer" or d.op.fusion != Fusion.ANCHOR:
        return None
    users = [c for c in graph.successors(n)
             if isinstance(c, str) and graph.node(c).kind in ("layer", "loss")]
    if len(users) != 1:
        return None
    c = users[0]
    cd = graph.node(c)
    if cd.kind == "layer" and cd.op.fusion == Fusion.ELEMWISE and cd.op.scalar \
            and cd.inputs == [n]:
        return c
    return None
