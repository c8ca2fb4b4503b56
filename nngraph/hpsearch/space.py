"""A spec's search space: its entries as Optuna distributions, and trial specs built from
chosen values.

A trial spec is the spec as written, with each chosen value set where its key points:
inside `train:` (an optimizer given by name becomes {type: name, ...}), on a layer declared
in `layers:`, on a block instance's parameter, or, for a layer inside a block instance, in
`overrides:` (nngraph/spec/search_schema.py). The `search:` section itself is left out:
a trial spec, and best.yaml, is a plain spec that `nngraph train` runs as it is.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import yaml

from ..errors import Diagnostic, SpecError
from ..spec.search_schema import default_direction
from ..spec.train_schema import TRAIN_DEFAULTS


@dataclass(frozen=True)
class Entry:
    key: str
    kind: str                 # uniform | log_uniform | int | choice
    values: tuple             # (lo, hi) for ranges, the options for choice
    step: int | None = None

    def suggest(self, trial):
        """The value Optuna's trial picks for this entry (a label for structured choices:
        see `labels`)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, self.labels())
        lo, hi = self.values
        if self.kind == "int":
            return trial.suggest_int(self.key, lo, hi, step=self.step or 1)
        return trial.suggest_float(self.key, float(lo), float(hi),
                                   log=self.kind == "log_uniform")

    def labels(self) -> list:
        """What Optuna sees of the choices: the values themselves where they are numbers,
        strings, booleans or null (what its storages keep), else their YAML flow form,
        `{l2: 0.0005}`, which `value` maps back."""
        if all(v is None or isinstance(v, (bool, int, float, str)) for v in self.values):
            return list(self.values)
        return [_flow(v) for v in self.values]

    def value(self, picked):
        """The spec value of what Optuna picked."""
        if self.kind == "choice" and picked in self.labels():
            return self.values[self.labels().index(picked)]
        return picked

    def grid(self) -> list:
        if self.kind == "choice":
            return self.labels()
        lo, hi = self.values
        return list(range(lo, hi + 1, self.step or 1))

    def ends(self) -> list:
        """The values that are tried before the first trial: every choice, both bounds."""
        return list(self.values)


@dataclass
class Space:
    entries: list
    metric: str
    direction: str
    sampler: str
    trials: int | None
    pruner: str
    seed: int
    epochs: int = 1               # the spec's, for the pruner's warm-up

    def grid(self) -> dict:
        return {e.key: e.grid() for e in self.entries}

    def values(self, params: dict) -> dict:
        """A trial's params (as Optuna keeps them) as spec values."""
        by_key = {e.key: e for e in self.entries}
        return {k: by_key[k].value(v) if k in by_key else v for k, v in params.items()}


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 16).strip()


def space_of(net) -> Space:
    """The network's `search:` section (already checked by nngraph.load) as a Space."""
    s = net.spec.get("search")
    if not isinstance(s, dict):
        raise SpecError([Diagnostic(net.file, 1, 1, "E010", f"the spec '{net.name}' has no "
                                    "search: section (see docs/search.md)")])
    entries = []
    for key, r in s["space"].items():
        kind = next(k for k in ("uniform", "log_uniform", "int", "choice") if k in r)
        entries.append(Entry(key, kind, tuple(r[kind]), r.get("step")))
    has_val = "validation_split" in (net.train.get("data") or {})
    metric = s.get("metric") or ("val_loss" if has_val else "loss")
    return Space(entries, metric, s.get("direction") or default_direction(metric),
                 s.get("sampler", "tpe"), s.get("trials"), s.get("pruner", "none"),
                 int(s.get("seed", net.train.get("seed", 0))),
                 int(net.train.get("epochs", 1)))


def trial_spec(net, values: dict) -> dict:
    """The spec with `values` ({key: value}) set, and without its search section."""
    doc = copy.deepcopy(net.spec)
    doc.pop("search", None)
    for key, value in values.items():
        _set(doc, net, key, value)
    return doc


def _set(doc, net, key, value):
    if key.startswith("train."):
        train = doc.setdefault("train", {})
        parts = key.split(".")[1:]
        if len(parts) == 2 and parts[0] == "optimizer" and not isinstance(
                train.get("optimizer"), dict):
            train["optimizer"] = {"type": train.get("optimizer", TRAIN_DEFAULTS["optimizer"])}
        where = train
        for p in parts[:-1]:
            where = where.setdefault(p, {})
        where[parts[-1]] = value
        return
    name, attr = key.rsplit(".", 1)
    layers = doc["layers"]
    for layer in layers:
        if isinstance(layer, dict) and layer.get("name") == name:
            layer[attr] = value          # a layer declared at the top, or a block instance
            return
    node = net.graph.nodes[name]
    if not node.get("cluster"):          # a top-level layer named automatically (dense_1)
        layers[node["path"][1]][attr] = value
        return
    doc.setdefault("overrides", {})[key] = value
