"""The `search:` section (hyperparameter search, run by nngraph/search/) and `overrides:`.

    search:
      metric: val_accuracy          # a value training reports; val_loss by default
      direction: maximize           # minimize by default for a loss, maximize otherwise
      sampler: tpe                  # tpe | random | grid
      trials: 40
      pruner: median                # none | median: stop bad trials early
      space:
        train.optimizer.lr: {log_uniform: [1.0e-4, 1.0]}
        hidden.units: {int: [16, 256], step: 16}
        res_1/conv.filters: {choice: [8, 16]}

A space key is a dotted path: `train.` and a key of the train section (with its sub-keys),
or LAYER.ATTR, where LAYER is a layer declared in `layers:`, a block instance declared
there (its ATTR is a block parameter) or a layer inside a block instance (`res_1/conv`).
This module checks what can be checked without trying values: the structure, the keys and
the ranges, with FILE:LINE:COL errors. Whether a value is one the key accepts is checked by
the search before its first trial, by building the spec with each end of every range.

`overrides:` sets attributes of layers inside block instances, which block parameters do not
reach: {res_1/conv.filters: 32}. The search writes what it chose for such layers there, so
that best.yaml is a complete spec; a user may write it by hand too.
"""
from __future__ import annotations

import math

from .. import ops
from ..errors import Reporter, did_you_mean
from .train_schema import DATA_KEYS, EARLY_STOPPING_KEYS, INIT_FROM_KEYS, OPTIMIZERS, TRAIN_KEYS
from .source import Source

SEARCH_KEYS = ("metric", "direction", "sampler", "trials", "pruner", "space", "seed")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median")
DIRECTIONS = ("minimize", "maximize")
KINDS = ("uniform", "log_uniform", "int", "choice")
MAX_TRIALS = 100_000
TRAIN_SUBKEYS = {
    "optimizer": ("type",) + tuple(sorted({k for o in OPTIMIZERS.values() for k in o})),
    "data": tuple(DATA_KEYS),
    "early_stopping": tuple(EARLY_STOPPING_KEYS),
    "init_from": tuple(INIT_FROM_KEYS),
}

SEARCH_DOCS = {
    "metric": "what the search optimises: a value training reports for an epoch (loss, "
              "accuracy, val_loss, val_accuracy, ...); a trial scores its best epoch; default "
              "val_loss with validation data, else loss",
    "direction": "minimize or maximize the metric; default minimize for a loss, else maximize",
    "sampler": "tpe (Bayesian, Optuna's TPESampler), random, or grid (every combination of "
               "choice and int entries)",
    "trials": "how many trials one run adds (`nngraph search --trials` overrides it); "
              "default 20, or the grid's size",
    "pruner": "median: stop a trial whose metric is worse than the median of earlier "
              "trials at the same epoch; none (default) runs every trial to its end",
    "space": "dotted key -> range: {uniform: [lo, hi]}, {log_uniform: [lo, hi]}, "
             "{int: [lo, hi], step: k}, {choice: [a, b, ...]}; keys are train.KEY... or "
             "LAYER.ATTR (also INSTANCE.PARAM and INSTANCE/LAYER.ATTR for blocks)",
    "seed": "seeds the sampler, so that a search repeats (default the spec's train.seed)",
}


def default_direction(metric: str) -> str:
    return "minimize" if metric.endswith("loss") or metric.endswith("error") else "maximize"


def check_search(src: Source, rep: Reporter, search, layers: dict, instances: dict,
                 report_keys: list | None) -> None:
    """`layers`: name -> (op, in_block); `instances`: declared instance name -> block params;
    `report_keys`: what training reports (None when it could not be worked out)."""
    if search is None:
        return
    if not isinstance(search, dict):
        rep.error(src.at(("search",)), "E012", "'search' is a mapping with a 'space'")
        return
    for k in search:
        if k not in SEARCH_KEYS:
            rep.error(src.at(("search", k), key=True), "E011",
                      f"search: unknown key '{k}'{did_you_mean(k, SEARCH_KEYS)}")
    _check_settings(src, rep, search, report_keys)
    space = search.get("space")
    if not isinstance(space, dict) or not space:
        rep.error(src.at(("search", "space") if "space" in search else ("search",)), "E012",
                  "search.space maps keys (train.optimizer.lr, LAYER.ATTR) to ranges, e.g. "
                  "{log_uniform: [1.0e-4, 1.0]}")
        return
    for key, entry in space.items():
        where = ("search", "space", key)
        _check_key(src, rep, key, where, layers, instances)
        kind = _check_range(src, rep, entry, where)
        if search.get("sampler") == "grid" and kind in ("uniform", "log_uniform"):
            rep.error(src.at(where), "E013", f"search.space '{key}': the grid sampler "
                      f"enumerates choice and int entries, not a {kind} range")


def _check_settings(src, rep, search, report_keys):
    checks = {"direction": DIRECTIONS, "sampler": SAMPLERS, "pruner": PRUNERS}
    for k, options in checks.items():
        v = search.get(k)
        if v is not None and v not in options:
            rep.error(src.at(("search", k)), "E013", f"search.{k} is one of "
                      f"{', '.join(options)}, got {v!r}{did_you_mean(str(v), options)}")
    for k, top in (("trials", MAX_TRIALS), ("seed", 2**32 - 1)):
        v = search.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)
                              or not (k == "seed" or v >= 1) or v < 0 or v > top):
            rep.error(src.at(("search", k)), "E013",
                      f"search.{k} must be an integer from {0 if k == 'seed' else 1} to "
                      f"{top:,}, got {v!r}")
    metric = search.get("metric")
    if metric is None:
        return
    if not isinstance(metric, str):
        rep.error(src.at(("search", "metric")), "E012", "search.metric names a reported value")
    elif report_keys is not None:
        known = report_keys + [f"val_{k}" for k in report_keys]
        if metric not in known:
            rep.error(src.at(("search", "metric")), "E013",
                      f"search.metric '{metric}' is not a value training reports"
                      f"{did_you_mean(metric, known)}; it reports {', '.join(known)} (val_ "
                      "ones with validation data)")


def _check_key(src, rep, key, where, layers, instances):
    at = src.at(where, key=True)
    if not isinstance(key, str) or "." not in key:
        rep.error(at, "E013", f"search.space key {key!r} is a dotted path: train.KEY... or "
                              "LAYER.ATTR")
        return
    if key.startswith("train."):
        parts = key.split(".")[1:]
        if parts[0] not in TRAIN_KEYS:
            rep.error(at, "E013", f"search.space '{key}': the train section has no key "
                      f"'{parts[0]}'{did_you_mean(parts[0], list(TRAIN_KEYS))}")
        elif len(parts) > 1 and parts[0] not in TRAIN_SUBKEYS or len(parts) > 2:
            rep.error(at, "E013", f"search.space '{key}': train.{parts[0]} has no sub-key "
                                  f"'{'.'.join(parts[1:])}'")
        elif len(parts) == 2 and parts[1] not in TRAIN_SUBKEYS[parts[0]]:
            options = TRAIN_SUBKEYS[parts[0]]
            rep.error(at, "E013", f"search.space '{key}': train.{parts[0]} has no key "
                                  f"'{parts[1]}'{did_you_mean(parts[1], options)}")
        return
    name, attr = key.rsplit(".", 1)
    if name in instances:
        if attr not in instances[name]:
            rep.error(at, "E013", f"search.space '{key}': block instance '{name}' has no "
                      f"parameter '{attr}'{did_you_mean(attr, list(instances[name]))}")
        return
    if name not in layers:
        rep.error(at, "E013", f"search.space '{key}': no layer '{name}'"
                              f"{did_you_mean(name, list(layers) + list(instances))}")
        return
    names = [a.name for a in ops.layer_attrs(layers[name])]
    if attr not in names:
        rep.error(at, "E013", f"search.space '{key}': layer '{name}' ({layers[name].name}) "
                              f"has no attribute '{attr}'{did_you_mean(attr, names)}")


def _check_range(src, rep, entry, where) -> str | None:
    key = where[-1]
    kinds = [k for k in KINDS if isinstance(entry, dict) and k in entry]
    if len(kinds) != 1:
        rep.error(src.at(where), "E013", f"search.space '{key}': a range is one of "
                  "{uniform: [lo, hi]}, {log_uniform: [lo, hi]}, {int: [lo, hi], step: k} "
                  f"or {{choice: [...]}}, got {entry!r:.60}")
        return None
    kind = kinds[0]
    extra = [k for k in entry if k != kind and not (kind == "int" and k == "step")]
    if extra:
        rep.error(src.at(where + (extra[0],), key=True), "E011",
                  f"search.space '{key}': unknown key '{extra[0]}' in a {kind} range")
    v = entry[kind]
    if kind == "choice":
        if not isinstance(v, list) or not v:
            rep.error(src.at(where + (kind,)), "E013",
                      f"search.space '{key}': choice takes a non-empty list of values")
        return kind
    problem = _bounds_problem(kind, v, entry.get("step"))
    if problem:
        rep.error(src.at(where + (kind,)), "E013", f"search.space '{key}': {problem}")
    return kind


def _bounds_problem(kind, v, step) -> str | None:
    number = (int,) if kind == "int" else (int, float)
    if not (isinstance(v, list) and len(v) == 2
            and all(isinstance(x, number) and not isinstance(x, bool) for x in v)):
        what = "integers" if kind == "int" else "numbers"
        return f"{kind} takes [lo, hi], two {what}, got {v!r}"
    lo, hi = v
    if not all(math.isfinite(x) for x in v) or lo >= hi:
        return f"{kind} needs finite lo < hi, got [{lo}, {hi}]"
    if kind == "log_uniform" and lo <= 0:
        return f"log_uniform needs lo > 0 (it samples the logarithm), got {lo}"
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 1
                             or step > hi - lo):
        return f"step must be an integer from 1 to hi - lo ({hi - lo}), got {step!r}"
    return None


def check_overrides(src: Source, rep: Reporter, overrides, decls: list) -> None:
    """Set `overrides:` values on the expanded layer declarations (in place)."""
    if overrides is None:
        return
    if not isinstance(overrides, dict):
        rep.error(src.at(("overrides",)), "E012", "'overrides' maps LAYER.ATTR to a value, "
                  "e.g. {res_1/conv.filters: 32}")
        return
    by_name = {d.name: d for d in decls}
    for key, value in overrides.items():
        at = src.at(("overrides", key), key=True)
        name, _, attr = key.rpartition(".")
        if name not in by_name or not attr:
            rep.error(at, "E013", f"overrides: '{key}' is not LAYER.ATTR of a layer"
                                  f"{did_you_mean(name, list(by_name))}")
            continue
        decl = by_name[name]
        decl.attrs[attr] = value
        decl.attr_paths[attr] = ("overrides", key)
