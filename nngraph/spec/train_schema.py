"""The `train:` section: optimizer, batch size, epochs, data. Checked like layers are."""
from __future__ import annotations

import math

from ..errors import Reporter, did_you_mean
from ..metrics import parse as parse_metrics
from ..ops.base import AttrError, Bool, Choice, Float, Int, Str
from .phases_schema import check_phases
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
DATASETS = ("mnist_5k", "digits", "iris", "wine", "breast_cancer", "diabetes", "xor", "and",
            "or", "sequence_sum", "sequence_parity", "sequence_sine", "tokens_majority", "ring8")

DATA_KEYS = {
    "dataset": Choice(DATASETS),
    "npz": Str(), "csv": Str(),
    "images": Str(),                      # a folder of class sub-folders (image_folder.py)
    "inline": None,                       # {input name: nested list}
    "map": None,                          # {input name: array name in the npz/csv/dataset}
    "label_column": Str(),
    "resize": Bool(),                     # images: resize each to the input's height x width
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
    "metrics": None, "init_from": None, "phases": None,
}
INIT_FROM_KEYS = {"file": Str(), "skip": None}
EARLY_STOPPING_KEYS = {"patience": Int(0), "min_delta": Float(0),
                       "monitor": Str()}      # a reported key: spec/build.py checks it

# What each key means and what an absent one amounts to, for `nngraph schema` and
# docs/spec.md (the checks above do not read these). A key missing from a *_DEFAULTS table
# has no single default: its description says what happens without it.
TRAIN_DOCS = {
    "optimizer": "a name (sgd, rmsprop, adagrad, adam) or {type: .., lr: ..}",
    "batch_size": "samples per optimizer step",
    "epochs": "passes over the training data (`nngraph train --epochs` overrides it)",
    "data": "where the training data comes from, and how to prepare it",
    "shuffle": "shuffle the training samples anew every epoch (fit(shuffle=..) overrides it)",
    "seed": "seeds the initial parameters, the batch order and dropout (compile(seed=..) "
            "and `nngraph train --seed` override it); train.data.seed seeds the split",
    "early_stopping": "stop when a reported value has not improved for `patience` epochs",
    "metrics": "metrics reported for every loss with a target where they apply",
    "phases": "train in phases, each with its own losses, parameters and optimizer: "
              "one after another (epochs) or alternating (steps), see docs/phases.md",
    "init_from": "start from another model's parameters, copied by layer name: a .nnz or "
                 ".onnx file (relative to the spec's folder), or {file: .., skip: [layer, "
                 "..]}; layers the file lacks, or listed under skip, keep their initial "
                 "values (`nngraph train --weights` overrides the file)",
}
INIT_FROM_DOCS = {
    "file": "the .nnz or .onnx file, relative to the spec's folder",
    "skip": "layers whose parameters are not copied (a new head of another size)",
}
TRAIN_DEFAULTS = {"optimizer": "sgd", "batch_size": 32, "epochs": 1, "shuffle": True, "seed": 0}

DATA_DOCS = {
    "dataset": "a named dataset shipped with nngraph or generated on the fly",
    "npz": "an .npz file of named arrays, relative to the spec's folder",
    "csv": "a numeric CSV file with a header row, relative to the spec's folder",
    "images": "a folder with one sub-folder of images per class, relative to the spec's "
              "folder: x the images, y the class (sub-folders in sorted name order)",
    "inline": "input name -> nested list of values, written in the spec",
    "map": "input name -> array name in the file or dataset",
    "label_column": "csv: the column that holds the labels (default: the last one)",
    "resize": "images: resize every image to the input's height and width, instead of "
              "requiring that size",
    "validation_split": "fraction of the samples held out for validation",
    "test_split": "fraction of the samples held out from training and validation alike "
                  "(nngraph.data.load_splits(net).test)",
    "limit": "use only this many samples: a seeded subset stratified by class, or the "
             "first ones with shuffle: false",
    "scale": "divide the float feature inputs by this number (255 for pixels)",
    "standardize": "centre the float feature inputs and scale them to unit variance, with "
                   "the training split's statistics",
    "one_hot": "turn class indices into one-hot rows for a label input of shape [classes]",
    "shuffle": "false keeps the file order: the held-out splits are then the last samples",
    "seed": "seeds the split, limit and the generated datasets",
    "length": "generated sequence datasets: steps per sample",
    "samples": "generated datasets: number of samples",
}
DATA_DEFAULTS = {"validation_split": 0.0, "test_split": 0.0, "standardize": False,
                 "one_hot": False, "shuffle": True, "seed": 0, "resize": False}

EARLY_STOPPING_DOCS = {
    "patience": "epochs without improvement before training stops",
    "min_delta": "smallest change that counts as an improvement",
    "monitor": "a value training reports (default val_loss with validation data, else loss); "
               "accuracy-like values must rise, others fall",
}
EARLY_STOPPING_DEFAULTS = {"patience": 3, "min_delta": 0.0}

OPTIMIZER_DOCS = {
    "type": "which optimizer",
    "lr": "learning rate",
    "momentum": "fraction of the previous step kept (0: plain SGD)",
    "nesterov": "Nesterov momentum: the step looks ahead along the velocity",
    "decay": "learning rate at update t is lr / (1 + decay * t)",
    "rho": "decay rate of the running mean of squared gradients",
    "eps": "added to the denominator so that it is never 0",
    "beta1": "decay rate of the running mean of gradients",
    "beta2": "decay rate of the running mean of squared gradients",
}


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
            sources = [k for k in ("dataset", "npz", "csv", "images", "inline") if k in data]
            if len(sources) != 1:
                rep.error(src.at(path + ("data",)), "E010",
                          "train.data needs exactly one of dataset, npz, csv, images or "
                          "inline; got "
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
    if "init_from" in train:
        out["init_from"] = _check_init_from(src, rep, train["init_from"], path + ("init_from",))
    if "phases" in train:
        out["phases"] = check_phases(src, rep, train["phases"], path + ("phases",), _check_map,
                                     _check_optimizer)
    if train.get("metrics") is not None:
        try:
            parse_metrics(train["metrics"], allow_loss=True)
        except AttrError as e:
            rep.error(src.at(path + ("metrics",)), e.code, f"train.metrics: {e}")
    return out


def _check_init_from(src, rep, init, path) -> dict:
    """`init_from: FILE` or `{file: FILE, skip: [layer, ...]}` as {'file', 'skip'}; the skip
    names are checked against the layers once the graph is built (spec/checks.py)."""
    if isinstance(init, str):
        init = {"file": init}
    if not isinstance(init, dict):
        rep.error(src.at(path), "E012", "init_from is a file name or {file: .., skip: [..]}")
        return {}
    checked = _check_map(src, rep, init, INIT_FROM_KEYS, path, "train.init_from")
    if "file" not in init:
        rep.error(src.at(path), "E010", "train.init_from needs file: the .nnz or .onnx "
                                        "whose parameters to start from")
    skip = init.get("skip", [])
    if not isinstance(skip, list) or not all(isinstance(k, str) for k in skip):
        rep.error(src.at(path + ("skip",)), "E012", "init_from.skip is a list of layer names")
        skip = []
    return {"file": checked.get("file", ""), "skip": list(skip)} if "file" in checked else {}


def check_optimizer(opt) -> tuple[dict, list]:
    """An optimizer as a spec or a model file gives it (a name, or a mapping with `type`)
    checked against the tables: (its settings with the defaults filled in, the problems).
    A problem is (the setting's key or None, the error code, the message, whether it is
    about the key rather than its value); a spec reports each where it is written, as
    "optimizer 'adam': lr: must be > 0, got 0", a model file the first, as "optimizer.lr:
    ...". Numbers must be finite."""
    sgd = dict(OPTIMIZER_DEFAULTS["sgd"], type="sgd")
    if isinstance(opt, str):
        opt = {"type": opt}
    if not isinstance(opt, dict):
        return sgd, [(None, "E012", "optimizer is a name or a mapping with 'type'", False)]
    kind = opt.get("type", "sgd")
    if not isinstance(kind, str):
        return sgd, [("type", "E012", f"optimizer type must be a name such as adam, got "
                                      f"{kind!r:.60}", False)]
    if kind not in OPTIMIZERS:
        return sgd, [("type", "E013", f"unknown optimizer '{kind}'"
                                      f"{did_you_mean(kind, OPTIMIZERS)}; choose from "
                                      f"{', '.join(OPTIMIZERS)}", False)]
    table, checked, problems = OPTIMIZERS[kind], {}, []
    for k, v in opt.items():
        if k == "type":
            continue
        if k not in table:
            problems.append((k, "E011", f"{kind} has no such setting{did_you_mean(k, table)};"
                                        f" it has {', '.join(table)}", True))
            continue
        try:
            checked[k] = table[k].check(v)
            if isinstance(checked[k], float) and not math.isfinite(checked[k]):
                raise AttrError(f"must be a finite number, got {v}", "E013")
        except AttrError as e:
            problems.append((k, e.code, str(e), False))
        except OverflowError:               # an integer too large for a float
            problems.append((k, "E013", f"must be a finite number, got {v!r:.60}", False))
    return {**OPTIMIZER_DEFAULTS[kind], **checked, "type": kind}, problems


def _check_optimizer(src, rep, opt, path):
    config, problems = check_optimizer(opt)
    for k, code, message, key in problems:
        where = f"optimizer '{config['type']}': {k}: " if k not in (None, "type") else ""
        rep.error(src.at(path + ((k,) if k else ()), key=key), code, where + message)
    return config


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
