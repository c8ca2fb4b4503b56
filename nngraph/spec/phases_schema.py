"""`train.phases`: training in phases, each with its own losses, parameters and optimizer.

    train:
      phases:
        - {name: discriminator, losses: [d_real, d_fake], params: [D*], steps: 1,
           optimizer: {type: adam, lr: 0.0002, beta1: 0.5}}
        - {name: generator, losses: [g_loss], params: [G*], steps: 1}

A phase with `epochs: N` runs alone for N epochs, after the phase before it (greedy
layer-wise pre-training, then fine-tuning); consecutive phases with `steps: K` alternate,
each taking K steps (K batches) per round, for train.epochs epochs (a GAN's two players).
`losses` default to every loss, `params` (layer names, block instances or globs over them)
to every trainable parameter, `optimizer` to train.optimizer. Checked here in two steps:
the shape of the section with `train:`, the names once the graph is built.
"""
from __future__ import annotations

import fnmatch

from ..errors import did_you_mean
from ..ops.base import Int, Str

PHASE_KEYS = {"name": Str(), "losses": None, "params": None, "optimizer": None,
              "epochs": Int(1, 1_000_000), "steps": Int(1, 1_000_000)}
PHASE_DOCS = {
    "name": "the phase's name: history and progress report its loss as NAME_loss",
    "losses": "the losses this phase minimises (default: every loss)",
    "params": "layers or block instances whose parameters it updates; globs such as D_* "
              "allowed (default: every trainable parameter)",
    "optimizer": "its own optimizer, with its own state (default: train.optimizer)",
    "epochs": "run alone for this many epochs, after the phase before it",
    "steps": "alternate with the neighbouring phases that have steps: this many steps per "
             "round, for train.epochs epochs",
}


def check_phases(src, rep, phases, path, check_map, check_optimizer) -> list:
    """The section's shape: a list of mappings with known keys, unique names, and one of
    epochs or steps each. Returns the phases with their optimizers checked."""
    if not isinstance(phases, list) or not phases:
        rep.error(src.at(path), "E012", "train.phases is a non-empty list of phases such as "
                                        "{name: pretrain, losses: [..], params: [..], epochs: 5}")
        return []
    out, seen = [], set()
    for i, ph in enumerate(phases):
        at = path + (i,)
        if not isinstance(ph, dict):
            rep.error(src.at(at), "E012", "a phase is a mapping with name, losses, params and "
                                          "epochs or steps")
            continue
        checked = check_map(src, rep, ph, PHASE_KEYS, at, "train.phases")
        name = checked.get("name")
        if name is None:
            rep.error(src.at(at), "E010", "a phase needs a name")
        elif name in seen:
            rep.error(src.at(at + ("name",)), "E022", f"duplicate phase name '{name}'")
        seen.add(name)
        if ("epochs" in ph) == ("steps" in ph):
            rep.error(src.at(at), "E010", f"phase '{name}' needs exactly one of epochs (run "
                                          "alone) or steps (alternate with its neighbours)")
        for key in ("losses", "params"):
            v = ph.get(key)
            if v is not None and (not isinstance(v, list) or not v
                                  or not all(isinstance(x, str) for x in v)):
                rep.error(src.at(at + (key,)), "E012",
                          f"phase '{name}': {key} is a non-empty list of names")
                checked.pop(key, None)
        if ph.get("optimizer") is not None:
            checked["optimizer"] = check_optimizer(src, rep, ph["optimizer"], at + ("optimizer",))
        out.append(checked)
    return out


def check_phase_names(src, rep, g, train, losses, clusters) -> None:
    """Each phase's losses are losses of the network, its params patterns match parameters,
    and it updates something the losses reach."""
    layers = [n for n, d in g.nodes(data=True) if d.get("params")]
    for i, ph in enumerate(train.get("phases") or []):
        at = ("train", "phases", i)
        name = ph.get("name", f"#{i + 1}")
        for j, loss in enumerate(ph.get("losses") or []):
            if loss not in losses:
                rep.error(src.at(at + ("losses", j)), "E021",
                          f"phase '{name}': '{loss}' is not a loss of the network"
                          f"{did_you_mean(loss, losses)}; losses are {', '.join(losses)}")
        for j, pattern in enumerate(ph.get("params") or []):
            if not phase_layers([pattern], layers, clusters, g):
                rep.error(src.at(at + ("params", j)), "E021",
                          f"phase '{name}': '{pattern}' names no layer with parameters"
                          f"{did_you_mean(pattern, layers + sorted(clusters))}; layers with "
                          f"parameters are {', '.join(layers) or 'none'}")


def phase_layers(patterns, layers, clusters, g) -> set:
    """The layers (of `layers`, those with parameters) that `patterns` name: a layer name, a
    block instance (every layer inside it) or a glob over either."""
    out = set()
    for pattern in patterns:
        for layer in layers:
            scopes = [layer] + list(g.nodes[layer].get("cluster") or ())
            if any(fnmatch.fnmatchcase(s, pattern) for s in scopes):
                out.add(layer)
    return out
