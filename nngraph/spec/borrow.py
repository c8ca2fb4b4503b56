"""Nodes that read parameters of other layers, and the losses some layers bring along.

Two mechanisms that spec build runs once the layers are connected:

    companion   an op may name a loss that comes with each of its layers: an `rbm` layer L
                brings `L_cd`, its contrastive divergence, reading [L's input, L]. It is an
                ordinary loss (reported by name, chosen by training phases), so a network of
                RBMs needs no `losses:` section.
    borrows     an op may read parameters owned by other layers (a contractive penalty reads
                its encoder's weights; a companion loss reads its layer's). Its rule returns
                {local name: 'layer.param'}, recorded as the node's `borrowed`; lowering gives
                the node those parameters, and every backend sums the gradients that several
                nodes send to one parameter.
"""
from __future__ import annotations

from .. import ops
from ..ops.base import Attrs, ShapeError


def add_companions(src, rep, g, losses: list) -> None:
    """Add each layer's companion loss (before shapes are inferred, so that they are checked
    like any loss); their names go first in `losses`."""
    added = []
    for name, d in list(g.nodes(data=True)):
        op = d.get("op")
        if d["kind"] != "layer" or op is None or op.companion is None or d.get("broken"):
            continue
        loss_op, suffix = op.companion
        loss = f"{name}_{suffix}"
        if loss in g:
            rep.error(g.nodes[loss]["pos"], "E022",
                      f"duplicate name '{loss}': layer '{name}' ({op.name}) brings a loss of "
                      f"that name (its {loss_op}); rename one of them")
            continue
        lop = ops.get(loss_op)
        attrs = Attrs({at.name: at.default for at in ops.layer_attrs(lop)})
        inputs = [d["inputs"][0], name] if d["inputs"] else [name]
        g.add_node(loss, kind="loss", op=lop, attrs=attrs, activation=None, inputs=inputs,
                   shape=None, dtype=None, params={}, state={}, cluster=d.get("cluster"),
                   pos=d["pos"], path=d["path"], attr_paths={}, name=loss, broken=False,
                   companion_of=name)
        for i in dict.fromkeys(inputs):
            g.add_edge(i, loss)
        added.append(loss)
    losses[:0] = added


def resolve_borrows(src, rep, g) -> None:
    """Record what each borrowing node reads (after shapes are inferred: the rules look at
    the layers they borrow from)."""
    for name, d in g.nodes(data=True):
        op = d.get("op")
        if op is None or op.borrows is None or d.get("broken") or d.get("shape") is None:
            continue
        try:
            params, extra = op.borrows(g, name)
        except ShapeError as e:
            rep.error(d["pos"], e.code, f"{'loss' if d['kind'] == 'loss' else 'layer'} "
                                        f"'{name}' ({op.name}): {e}")
            continue
        d["borrowed"] = dict(params)
        d["attrs"] = Attrs({**d["attrs"], **extra})
        # the state may depend on what was borrowed (a PCD loss's chains: rbm.chains)
        d["state"] = op.state(d["attrs"], [g.nodes[i]["shape"] for i in d["inputs"]])


def resolve_shares(src, rep, g, shared_instances: dict) -> None:
    """Tie layers to the layers whose parameters they use: a layer's `shares: OTHER`, and
    every layer of a block instance written with `shares: OTHER_INSTANCE` (its layer
    INST/x uses OTHER_INSTANCE/x). The layer keeps no parameters of its own and borrows
    the other's, so an optimizer sees each parameter once and its gradient sums both
    uses (a GAN's discriminator read by real and by generated samples)."""
    for name, d in g.nodes(data=True):
        if d["kind"] != "layer" or d.get("broken") or not d.get("params"):
            continue
        other, where = _partner(name, d, shared_instances)
        if other is None:
            continue
        o = g.nodes[other] if other in g else None
        problem = _share_problem(name, d, other, o)
        if problem:
            rep.error(src.at(where), "E021", f"layer '{name}': shares: {problem}")
            continue
        d["borrowed"] = {p: f"{other}.{p}" for p in d["params"]}
        d["params"], d["shares"] = {}, other


def _partner(name, d, shared_instances):
    """The layer whose parameters `name` uses, and the spec path that says so."""
    own = (d.get("attrs") or {}).get("shares")
    if own:
        return own, d["path"] + ("shares",)
    for inst in d.get("cluster") or ():
        if inst in shared_instances and name.startswith(inst + "/"):
            target, where = shared_instances[inst]
            return f"{target}/{name[len(inst) + 1:]}", where
    return None, None


def _share_problem(name, d, other, o) -> str | None:
    if o is None or o["kind"] != "layer":
        return f"'{other}' is not a layer of the network"
    if other == name:
        return "a layer cannot share its own parameters"
    if o.get("shares") or (o.get("attrs") or {}).get("shares"):
        return f"'{other}' itself shares another layer's parameters; name that one"
    if o["op"] is not d["op"]:
        return f"'{other}' is a {o['op'].name} layer, '{name}' a {d['op'].name} layer"
    if d.get("state"):
        return f"{d['op'].name} layers keep state of their own and cannot share parameters"
    mine = {p: tuple(s.shape) for p, s in d["params"].items()}
    theirs = {p: tuple(s.shape) for p, s in (o.get("params") or {}).items()}
    if mine != theirs:
        show = lambda m: ", ".join(f"{p} {list(s)}" for p, s in m.items()) or "none"  # noqa
        return (f"its parameters ({show(mine)}) differ from those of '{other}' "
                f"({show(theirs)})")
    return None
