"""The `train:` section: optimizer, batch size, epochs, data. Checked like layers are."""
from __future__ import annotations

from ..errors import Reporter, did_you_mean
from ..metrics import parse as parse_metrics
from ..ops.base import AttrError, Bool, Choice, Float, Int, Str
from .source import Source

OPTIMIZERS = {
    "sgd": {"lr": Float(0, exclusive_min=True), "momentum": Float(0, 0.999999),
            "nesterov": Bool(), "decay": Float(0)},
    "rmsprop": {"lr": Float(0, exclusive_min=True), "rho": Float(0, 0.999999),
                "eps": Float(0, exclusive_min=True), "decay": Float(0)},
    "adagrad": {"lr": Float(0, exclusive_min=True), "eps": Float(0, exclusive_min=True),
                "decay": Float(0)},
    "adam": {"lr": Float(0, exclusive_min=True), "beta1": Float(0, 0.999999),
             "beta2": Float(0, 0.999999), "eps": Float(0, exclusive_min=True),
             "decay": Float(0)},
}
OPTIMIZER_DEFAULTS = {
    "sgd": {"lr": 0.01, "momentum": 0.0, "nesterov": False, "decay": 0.0},
    "rmsprop": {"lr": 0.001, "rho": 0.9, "eps": 1e-7, "decay": 0.0},
    "adagrad": {"lr": 0.01, "eps": 1e-7, "decay": 0.0},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7, "decay": 0.0},
}

# Named datasets (see nngraph/data.py for what each one holds).
DATASETS = ("mnist_5k", "digits", "iris", "xor", "and", "or", "sequence_sum", "sequence_parity",
            "sequence_sine", "tokens_majority")

DATA_KEYS = {
    "dataset": Choice(DATASETS),
    "npz": Str(), "csv": Str(),
    "inline": None,                       # {input name: nested list}
    "map": None,                          # {input name: array name in the npz/csv/dataset}
    "label_column": Str(),
    "validation_split": Float(0.0, 0.95),
    "test_split": Float(0.0, 0.95),
    "limit": Int(1),
    "scale": Float(0, exclusive_min=True),
    "standardize": Bool(),
    "one_hot": Bool(),
    "shuffle": Bool(),
    "seed": Int(0),
    "length": Int(1, 100_000), "samples": Int(1, 10_000_000),
}

TRAIN_KEYS = {
    "optimizer": None, "batch_size": Int(1, 1 << 20), "epochs": Int(0, 1_000_000),
    "data": None, "shuffle": Bool(), "seed": Int(0), "early_stopping": None,
    "metrics": None,
}
EARLY_STOPPING_KEYS = {"patience": Int(0), "min_delta": Float(0),
                       "monitor": Str()}      # a reported key: spec/build.py checks it


def check_train(src: Source, rep: Reporter, train) -> dict:
    """Validate `train:`; returns it with optimizer defaults filled in."""
    if train is None:
        return {}
    path = ("train",)
    if not isinstance(train, dict):
        rep.error(src.at(path), "E012", "'train' must be a mapping")
        return {}
    out = dict(train)
    _check_map(src, rep, train, TRAIN_KEYS, path, "train")
    opt = train.get("optimizer")
    if opt is not None:
        out["optimizer"] = _check_optimizer(src, rep, opt, path + ("optimizer",))
    data = train.get("data")
    if data is not None:
        if isinstance(data, dict):
            _check_map(src, rep, data, DATA_KEYS, path + ("data",), "train.data")
            sources = [k for k in ("dataset", "npz", "csv", "inline") if k in data]
            if len(sources) != 1:
                rep.error(src.at(path + ("data",)), "E010",
                          "train.data needs exactly one of dataset, npz, csv or inline; got "
                          f"{', '.join(sources) or 'none'}")
        else:
            rep.error(src.at(path + ("data",)), "E012", "train.data must be a mapping")
    es = train.get("early_stopping")
    if es is not None:
        if isinstance(es, dict):
            _check_map(src, rep, es, EARLY_STOPPING_KEYS, path + ("early_stopping",),
                       "train.early_stopping")
        else:
            rep.error(src.at(path + ("early_stopping",)), "E012",
                      "early_stopping is a mapping such as {patience: 3}")
    if train.get("metrics") is not None:
        try:
            parse_metrics(train["metrics"], allow_loss=True)
        except AttrError as e:
            rep.error(src.at(path + ("metrics",)), e.code, f"train.metrics: {e}")
    return out


def _check_optimizer(src, rep, opt, path):
    if isinstance(opt, str):
        opt = {"type": opt}
    if not isinstance(opt, dict):
        rep.error(src.at(path), "E012", "optimizer is a name or a mapping with 'type'")
        return dict(OPTIMIZER_DEFAULTS["sgd"], type="sgd")
    kind = opt.get("type", "sgd")
    if not isinstance(kind, str):
        rep.error(src.at(path + ("type",)), "E012",
                  f"optimizer type must be a name such as adam, got {kind!r:.60}")
        return dict(OPTIMIZER_DEFAULTS["sgd"], type="sgd")
    if kind not in OPTIMIZERS:
        rep.error(src.at(path + ("type",)), "E013",
                  f"unknown optimizer '{kind}'{did_you_mean(kind, OPTIMIZERS)}; "
                  f"choose from {', '.join(OPTIMIZERS)}")
        return dict(OPTIMIZER_DEFAULTS["sgd"], type="sgd")
    table = dict(OPTIMIZERS[kind], type=None)
    checked = _check_map(src, rep, opt, table, path, f"optimizer '{kind}'")
    return {**OPTIMIZER_DEFAULTS[kind], **checked, "type": kind}


def _check_map(src, rep, m, table, path, what) -> dict:
    out = {}
    for k, v in m.items():
        if k not in table:
            rep.error(src.at(path + (k,), key=True), "E011",
                      f"{what}: unknown key '{k}'{did_you_mean(k, table)}")
            continue
        typ = table[k]
        if typ is None:
            out[k] = v
            continue
        try:
            out[k] = typ.check(v)
        except AttrError as e:
            rep.error(src.at(path + (k,)), e.code, f"{what}: {k}: {e}")
    return out
