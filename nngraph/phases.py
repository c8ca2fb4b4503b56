"""Training in phases (`train.phases`, spec/phases_schema.py): each phase minimises its own
losses over its own parameters with its own optimizer, all over one set of parameters.

    stage 1   rbm1       epochs: 5          one after another: greedy pre-training,
    stage 2   rbm2       epochs: 5          then fine-tuning
    stage 3   finetune   epochs: 10
    or
    stage 1   discriminator steps: 1  ┐     alternating, round after round, for
              generator     steps: 1  ┘     train.epochs epochs (a GAN's two players)

Each phase runs as a Model of its own, compiled for a copy of the network in which the
phase's losses are the losses and only the phase's parameters are trainable, so that its
backward and its update cover exactly what it trains (a generator's step sends gradients
through the discriminator without updating it). The phase models hold copies of the
parameters: a phase takes the values other phases changed before its steps and hands its
own back after them, which for small networks costs less than a step. Each phase keeps its
optimizer state (Adam's moments, its step count) across its turns.

training.py runs a phased epoch (_phase_epoch), turn by turn. Where training stands is the
model's epoch: epoch e belongs to the stage that covers it, so `fit` after `load_model` goes
on where the file left off. The phases' optimizer states are
not in the file: a resumed phase starts its optimizer afresh.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace


from . import dist
from .errors import DataError
from .ops.base import Attrs
from .spec.phases_schema import phase_layers


@dataclass
class Stage:
    phases: list            # [(phase spec, steps per round)]
    epochs: int
    first: int              # the first epoch of the schedule it covers


def stages(train: dict) -> list[Stage]:
    """The schedule: a stage per `epochs` phase, one per run of consecutive `steps` phases
    (which take train.epochs epochs)."""
    out, group, first = [], [], 0

    def close_group():
        nonlocal group, first
        if group:
            out.append(Stage(group, int(train.get("epochs", 1)), first))
            first += out[-1].epochs
            group = []
    for ph in train["phases"]:
        if "steps" in ph:
            group.append((ph, ph["steps"]))
            continue
        close_group()
        out.append(Stage([(ph, 1)], ph["epochs"], first))
        first += ph["epochs"]
    close_group()
    return out


def phase_network(net, phase: dict):
    """The network as phase `phase` trains it: its losses, and only its layers trainable."""
    layers = [n for n in net.order() if net.node(n).get("params")]
    chosen = (phase_layers(phase["params"], layers, net.clusters, net.graph)
              if phase.get("params") else set(layers))
    graph = net.graph.copy()
    for layer in layers:
        if layer not in chosen:
            d = graph.nodes[layer]
            d["attrs"] = Attrs({**d["attrs"], "trainable": False})
    train = {k: v for k, v in net.train.items() if k != "phases"}
    if phase.get("optimizer"):
        train["optimizer"] = phase["optimizer"]
    return replace(net, graph=graph, losses=list(phase.get("losses") or net.losses),
                   train=train)


class Phases:
    """The phase models of one Model, and the copies between them."""

    def __init__(self, model):
        self.model = model
        self.stages = stages(model.net.train)
        self.total_epochs = sum(s.epochs for s in self.stages)
        self.models: dict = {}
        self.changed: dict = {}         # phase name -> parameters changed since its last turn

    def stage_at(self, epoch: int) -> Stage:
        """The stage that covers `epoch`; after the schedule's end, the last one goes on."""
        for s in self.stages:
            if epoch < s.first + s.epochs:
                return s
        return self.stages[-1]

    def of(self, phase: dict):
        name = phase["name"]
        if name not in self.models:
            m = self.model
            index = [p["name"] for p in m.net.train["phases"]].index(name)
            # its own seed, so that two phases at the same step draw different noise
            pm = type(m)(phase_network(m.net, phase), backend=m.backend,
                            seed=m.seed * 1_000_003 + index + 1, dtype=m.dtype.name,
                            device=m.executor.device_index)
            pm.state = m.state
            self.models[name] = pm
            self.changed[name] = set(m.params)
        return self.models[name]

    def train_batch(self, phase: dict, batch: dict):
        """One step of `phase` on a checked batch: (loss, values)."""
        pm, master = self.of(phase), self.model
        for k in self.changed[phase["name"]]:
            pm.params[k][...] = master.params[k]
        self.changed[phase["name"]] = set()
        loss, values = pm._train_batch(batch)
        if math.isfinite(loss):
            mine = list(pm.program.trainable)
            for k in mine:
                master.params[k][...] = pm.params[k]
            for other, keys in self.changed.items():
                if other != phase["name"]:
                    keys.update(mine)
            master.step += 1
        return loss, values


def check_phased(model) -> None:
    """What phased training cannot do (yet), said before it starts."""
    if dist.world() is not None:
        raise DataError("data-parallel training (mpirun) does not run train.phases yet; "
                        "train this spec in one process")
