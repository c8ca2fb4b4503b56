"""Fitting data to a network: the `train.data` pipeline. The checks on every batch are in
nngraph/batch.py (`as_batch`, `fit_input`), which this applies to what it loads.

`load_training_data(net)` reads the spec's `train.data` section (a named dataset, an .npz or
CSV file, a folder of images, or inline lists; see docs/data.md, nngraph/datasets.py and
nngraph/image_folder.py) and returns `(train, validation)`, each {input name: array}. In
order: `one_hot` labels, fitting arrays to inputs, `limit` (a seeded subset stratified by
class, or the first samples with `shuffle: false`), the seeded split (stratified by class
where the labels are classes), then `scale` and `standardize` of the float feature inputs,
standardized with training statistics only.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from . import datasets, image_folder
from .batch import _expected, _same_batch_size, _signature, fit_input
from .errors import DataError, did_you_mean
from .ops.base import AttrError
from .spec.train_schema import DATA_KEYS

SOURCES = ("dataset", "npz", "csv", "images", "inline")


@dataclass
class Splits:
    """The samples of `train.data` divided three ways; validation and test may be None."""
    train: dict
    validation: dict | None = None
    test: dict | None = None
    standardization: dict = field(default_factory=dict)   # input -> (mean, std), train stats
    classes: tuple[str, ...] | None = None    # an image folder's class names, by class index


def load_training_data(net, overrides: dict | None = None) -> tuple[dict, dict | None]:
    """`(train, validation)` from the spec's `train.data`, each {input name: array}.

        >>> train, val = load_training_data(nngraph.load("specs/mnist_mlp.yaml"))
        >>> len(train["image"]), len(val["image"])
        (4000, 1000)

    `overrides` replaces keys of `train.data` (a key set to None removes it; a new source
    such as `npz` replaces the spec's). Relative paths resolve against the spec's folder.
    """
    splits = load_splits(net, overrides)
    return splits.train, splits.validation


def load_splits(net, overrides: dict | None = None) -> Splits:
    """Like `load_training_data`, also giving the `test_split` part and the statistics."""
    cfg = data_config(net, overrides)
    arrays, origin, class_names = _read_source(net, cfg)
    named = _assign(net, cfg, arrays, origin)
    if cfg.get("one_hot"):
        named = _one_hot(net, named, origin)
    fitted = {k: fit_input(net, k, a, f"input '{k}' ({origin})") for k, a in named.items()}
    _same_batch_size(fitted, f"the arrays of {origin}")
    if "limit" in cfg:
        fitted = _limit(cfg, fitted, _classes(net, fitted))

    classes = _classes(net, fitted)
    train_idx, val_idx, test_idx = _split(cfg, fitted, classes)
    _unseen_classes(cfg, classes, train_idx, val_idx, "validation")
    _unseen_classes(cfg, classes, train_idx, test_idx, "test")
    parts = [{k: a[idx] for k, a in fitted.items()} if idx is not None else None
             for idx in (train_idx, val_idx, test_idx)]
    floats = [k for k in net.feature_inputs if net.inputs[k].dtype.startswith("float")]
    if ("scale" in cfg or cfg.get("standardize")) and not floats:
        raise DataError(f"{origin}: scale and standardize apply to float feature inputs, and "
                        f"this network has none ({_signature(net)})")
    stats = {}
    for k in floats:
        if "scale" in cfg:
            for part in filter(None, parts):
                part[k] /= part[k].dtype.type(cfg["scale"])
        if cfg.get("standardize"):
            x = parts[0][k].astype(np.float64)            # training samples only
            mean, std = x.mean(axis=0), x.std(axis=0)
            std[std == 0] = 1.0                            # constant features: only centre them
            stats[k] = (mean, std)
            for part in filter(None, parts):
                part[k][...] = (part[k] - mean) / std
    return Splits(parts[0], parts[1], parts[2], stats, class_names)


def data_config(net, overrides: dict | None = None) -> dict:
    """`train.data` with `overrides` applied and checked."""
    base = dict((net.train or {}).get("data") or {})
    overrides = dict(overrides or {})
    for key, value in overrides.items():
        if key not in DATA_KEYS:
            raise DataError(f"unknown data option '{key}'{did_you_mean(key, DATA_KEYS)}; "
                            f"the options are {', '.join(DATA_KEYS)}")
        if value is not None and DATA_KEYS[key] is not None:
            try:
                overrides[key] = DATA_KEYS[key].check(value)
            except AttrError as e:
                raise DataError(f"data option {key}: {e}") from None
    if any(k in overrides for k in SOURCES):
        base = {k: v for k, v in base.items() if k not in SOURCES}
    cfg = {k: v for k, v in {**base, **overrides}.items() if v is not None}
    sources = [k for k in SOURCES if k in cfg]
    if not sources:
        raise DataError(f"network '{net.name}' has no train.data section: add one such as "
                        "data: {dataset: mnist_5k, validation_split: 0.2}, or pass the data "
                        "to fit() as {input name: array}")
    if len(sources) > 1:
        raise DataError(f"train.data needs exactly one of {', '.join(SOURCES)}; got "
                        f"{', '.join(sources)}")
    return cfg


# ---------------------------------------------------------------- reading and naming

def _read_source(net, cfg):
    """(arrays by name, where they come from for messages, class names or None)."""
    source = next(k for k in SOURCES if k in cfg)
    if "dataset" in cfg:
        name = cfg["dataset"]
        x, y = datasets.load_dataset(name, cfg.get("length"), cfg.get("samples"),
                                     cfg.get("seed", 0), getattr(net, "float_dtype", "float32"))
        return {"x": x, "y": y}, f"dataset {name}", None
    for opt, meant in (("length", "shapes the generated datasets"),
                       ("samples", "shapes the generated datasets"),
                       ("resize", "resizes the images of an images folder")):
        if opt in cfg and not (opt == "resize" and source == "images"):
            raise DataError(f"train.data.{opt} {meant}; it means nothing for {source} data")
    if "inline" in cfg:
        return datasets.read_inline(cfg["inline"]), "inline data", None
    path = resolve_path(net, cfg[source])
    try:
        if source == "images":
            return _read_images(net, cfg, path)
        if source == "npz":
            return datasets.read_npz(path), f"npz file {path}", None
        return datasets.read_csv(path, cfg.get("label_column")), f"CSV file {path}", None
    except DataError as e:
        raise DataError(f"train.data.{source}: {e}") from None


def _read_images(net, cfg, path):
    """The folder's images as array x, fitted to the [C, H, W] of the input that x will
    feed; their class indices as y."""
    target = _input_taking_x(net, cfg)
    if target is None:
        raise DataError(f"{path}: images need a feature input; the network has "
                        f"{_signature(net)}")
    d = net.inputs[target]
    folder = image_folder.read_image_folder(path, d.shape, d.dtype, cfg.get("resize", False),
                                            target)
    shown = ", ".join(folder.classes[:10]) + (", ..." if len(folder.classes) > 10 else "")
    return ({"x": folder.images, "y": folder.labels},
            f"image folder {path} of {len(folder.classes)} classes ({shown})", folder.classes)


def _input_taking_x(net, cfg):
    """The input that array x feeds, as _assign chooses it: the one `map` gives x, else an
    input named x, else the first feature input; None when none is left."""
    mapping = cfg.get("map") if isinstance(cfg.get("map"), dict) else {}
    for name, array in mapping.items():
        if array == "x" and name in net.inputs:
            return name
    if "x" in net.inputs and "x" not in mapping:
        return "x"
    return next((i for i in net.feature_inputs[:1] if i not in mapping), None)


def resolve_path(net, path: str) -> str:
    """`path` relative to the spec file's folder (the working folder for specs given as text)."""
    path = os.path.expanduser(str(path))
    if not os.path.isabs(path) and net.file and os.path.isfile(net.file):
        path = os.path.join(os.path.dirname(os.path.abspath(net.file)), path)
    return os.path.normpath(os.path.abspath(path))


def _assign(net, cfg, arrays, origin) -> dict:
    """{input name: array}: `map` first, then arrays named like inputs, then x and y. Sampled
    inputs take no array: the model draws them (nngraph/sampling.py)."""
    chosen = {}
    supplied = [i for i in net.inputs if i not in net.sampled_inputs]
    mapping = cfg.get("map") or {}
    if not isinstance(mapping, dict):
        raise DataError("train.data.map must map input names to array names, such as "
                        "{image: x, label: y}")
    for inp, name in mapping.items():
        if inp not in supplied:
            raise DataError(f"train.data.map: '{inp}' is not an input the data supplies"
                            f"{did_you_mean(inp, supplied)}; those are {', '.join(supplied)}"
                            + (" (sampled inputs are drawn)" if inp in net.inputs else ""))
        if name not in arrays:
            raise DataError(f"train.data.map: {origin} has no array '{name}'"
                            f"{did_you_mean(name, arrays)}; it has {', '.join(arrays)}")
        chosen[inp] = name
    for inp in supplied:
        if inp not in chosen and inp in arrays and inp not in chosen.values():
            chosen[inp] = inp
    firsts = {"x": net.feature_inputs[:1], "y": net.label_inputs[:1]}
    for name, inps in firsts.items():
        if inps and inps[0] not in chosen and name in arrays and name not in chosen.values():
            chosen[inps[0]] = name
    if "inline" in cfg:
        unused = [a for a in arrays if a not in chosen.values()]
        if unused:
            raise DataError(f"inline data: array '{unused[0]}' feeds no input"
                            f"{did_you_mean(unused[0], supplied)}; the inputs the data "
                            f"supplies are {', '.join(supplied)}")
    missing = [i for i in supplied if i not in chosen]
    if missing:
        raise DataError(f"{origin} has no array for input '{missing[0]}' "
                        f"{_expected(net.inputs[missing[0]])}; it holds {', '.join(arrays)}. "
                        f"Name the arrays after the inputs ({', '.join(supplied)}) or add "
                        f"map: {{{missing[0]}: <array name>}} to train.data")
    return {inp: np.asarray(arrays[chosen[inp]]) for inp in supplied}


def _one_hot(net, named, origin) -> dict:
    out, done = dict(named), []
    for k in net.label_inputs:
        shape, y = net.inputs[k].shape, named[k]
        if len(shape) != 1 or shape[0] < 2 or y.ndim == 0 or y.size != len(y):
            continue
        classes = y.reshape(len(y))
        if classes.dtype.kind not in "biuf" or not np.all(np.isfinite(classes)):
            raise DataError(f"one_hot: {origin}: labels for '{k}' must be class indices")
        whole = classes == np.round(classes)
        inside = whole & (classes >= 0) & (classes < shape[0])
        if not inside.all():
            i = int(np.argmin(inside))
            raise DataError(f"one_hot: {origin}: label {classes[i]} (sample {i}) is not a class "
                            f"index in [0, {shape[0]}) for input '{k}' of shape [{shape[0]}]")
        out[k] = np.eye(shape[0], dtype=np.float32)[classes.astype(np.int64)]
        done.append(k)
    if not done:
        raise DataError(f"one_hot: no label input takes one-hot rows; declare the label input "
                        f"with shape [classes] (this network has {_signature(net)})")
    return out


# ---------------------------------------------------------------- splitting

def _split(cfg, fitted, classes):
    """Index arrays (train, validation, test); validation and test None when not asked for.
    `classes`: each sample's class (_classes), to stratify by, or None."""
    n = len(next(iter(fitted.values())))
    want = {}
    for key in ("test_split", "validation_split"):
        frac = cfg.get(key, 0.0)
        want[key] = max(1, round(frac * n)) if frac > 0 else 0
    if not any(want.values()):
        return np.arange(n), None, None
    if sum(want.values()) >= n:
        raise DataError(f"validation_split {cfg.get('validation_split', 0)} and test_split "
                        f"{cfg.get('test_split', 0)} of {n} samples hold out "
                        f"{sum(want.values())}, leaving nothing to train on")
    if not cfg.get("shuffle", True):         # file order: the tail is held out, as in Keras
        n_test, n_val = want["test_split"], want["validation_split"]
        rest = np.arange(n)
        return (rest[:n - n_test - n_val], rest[n - n_test - n_val:n - n_test] if n_val else None,
                rest[n - n_test:] if n_test else None)
    rng = np.random.default_rng(cfg.get("seed", 0))
    order = rng.permutation(n)
    test, order = _take(order, classes, want["test_split"], rng)
    val, train = _take(order, classes, want["validation_split"], rng)
    return train, (val if len(val) else None), (test if len(test) else None)


def _limit(cfg, fitted, classes):
    """The `limit` first samples with `shuffle: false`; else a seeded subset of that many,
    as many of each class as its share (a file sorted by class, like mnist_5k, would give
    the first classes only), kept in file order."""
    n, k = len(next(iter(fitted.values()))), cfg["limit"]
    if k >= n:
        return fitted
    if not cfg.get("shuffle", True):
        idx = np.arange(k)
    else:
        rng = np.random.default_rng([cfg.get("seed", 0), 1])     # apart from the split's
        idx, _ = _take(rng.permutation(n), classes, k, rng)
        idx = np.sort(idx)
    return {name: a[idx] for name, a in fitted.items()}


def _unseen_classes(cfg, classes, train, held, part):
    """A DataError when `held` has classes that `train` lacks (a file sorted by class with
    `shuffle: false`, or classes too rare to split): the model could never learn them."""
    if classes is None or held is None:
        return
    unseen = np.setdiff1d(classes[held], classes[train])
    if len(unseen):
        shown = ", ".join(map(str, unseen[:10].tolist())) + (" ..." if len(unseen) > 10 else "")
        raise DataError(f"the {part} split holds class(es) {shown} that the training split "
                        f"lacks, so the model would never learn them: "
                        + ("drop `shuffle: false` (the data looks sorted by class)"
                           if not cfg.get("shuffle", True) else
                           "use more data or a smaller split"))


def _classes(net, fitted):
    """The class of every sample, when the first label input holds classes; else None."""
    if not net.label_inputs:
        return None
    name = net.label_inputs[0]
    y, d = fitted[name], net.inputs[name]
    if not d.dtype.startswith("float") and math.prod(d.shape) == 1:
        return y.reshape(len(y))
    if len(d.shape) == 1 and d.shape[0] > 1:
        is_one_hot = np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
        return y.argmax(axis=1) if is_one_hot else None
    return None


def _take(order, classes, k, rng):
    """k indices off `order`, as many from each class as its share (largest remainders get
    the odd ones), each class's first members in `order`; (taken, rest), both in order."""
    if classes is None or k == 0:
        return order[:k], order[k:]
    _, inv, counts = np.unique(classes[order], return_inverse=True, return_counts=True)
    exact = counts * k / len(order)
    quota = np.floor(exact).astype(np.int64)
    odd = np.lexsort((rng.random(len(counts)), quota - exact))[:k - quota.sum()]
    quota[odd] += 1
    by_class = np.argsort(inv, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[by_class] = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    taken = rank < quota[inv]
    return order[taken], order[~taken]


# ---------------------------------------------------------------- checking batches
