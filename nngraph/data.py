"""Fitting data to a network: the `train.data` pipeline and the checks on every batch.

`as_batch` is the one place user data is checked; everything that reaches a kernel has been
through it (or through `load_training_data`, which applies the same checks):

    >>> batch = as_batch(net, {"image": x, "label": y}, require_labels=True)
    DataError: input 'image': expected an array of shape (N, 1, 28, 28) float32, got
    (64, 3, 28, 28) float64: 3x28x28 = 2352 values per sample, the input takes 1x28x28 = 784

`load_training_data(net)` reads the spec's `train.data` section (a named dataset, an .npz or
CSV file, or inline lists; see nngraph/datasets.py) and returns `(train, validation)`, each
{input name: array}. In order: `limit`, `one_hot` labels, fitting arrays to inputs, the
seeded split (stratified by class where the labels are classes), then `scale` and
`standardize` of the float feature inputs, standardized with training statistics only.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from . import datasets
from .errors import DataError, did_you_mean
from .ops.base import AttrError
from .spec.train_schema import DATA_KEYS

SOURCES = ("dataset", "npz", "csv", "inline")
_KINDS = {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers",
          "M": "dates", "m": "time spans", "V": "records"}


@dataclass
class Splits:
    """The samples of `train.data` divided three ways; validation and test may be None."""
    train: dict
    validation: dict | None = None
    test: dict | None = None
    standardization: dict = field(default_factory=dict)   # input -> (mean, std), train stats


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
    arrays, origin = _read_source(net, cfg)
    named = _assign(net, cfg, arrays, origin)
    if "limit" in cfg:
        named = {k: (a[:cfg["limit"]] if a.ndim else a) for k, a in named.items()}
    if cfg.get("one_hot"):
        named = _one_hot(net, named, origin)
    fitted = {k: fit_input(net, k, a, f"input '{k}' ({origin})") for k, a in named.items()}
    _same_batch_size(fitted, f"the arrays of {origin}")

    train_idx, val_idx, test_idx = _split(net, cfg, fitted)
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
    return Splits(parts[0], parts[1], parts[2], stats)


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
    if "dataset" in cfg:
        name = cfg["dataset"]
        x, y = datasets.load_dataset(name, cfg.get("length"), cfg.get("samples"),
                                     cfg.get("seed", 0))
        return {"x": x, "y": y}, f"dataset {name}"
    for opt in ("length", "samples"):
        if opt in cfg:
            raise DataError(f"train.data.{opt} shapes the generated datasets; it means "
                            f"nothing for {next(k for k in SOURCES if k in cfg)} data")
    if "inline" in cfg:
        return datasets.read_inline(cfg["inline"]), "inline data"
    kind = "npz" if "npz" in cfg else "csv"
    path = resolve_path(net, cfg[kind])
    try:
        if kind == "npz":
            return datasets.read_npz(path), f"npz file {path}"
        return datasets.read_csv(path, cfg.get("label_column")), f"CSV file {path}"
    except DataError as e:
        raise DataError(f"train.data.{kind}: {e}") from None


def resolve_path(net, path: str) -> str:
    """`path` relative to the spec file's folder (the working folder for specs given as text)."""
    path = os.path.expanduser(str(path))
    if not os.path.isabs(path) and net.file and os.path.isfile(net.file):
        path = os.path.join(os.path.dirname(os.path.abspath(net.file)), path)
    return os.path.normpath(os.path.abspath(path))


def _assign(net, cfg, arrays, origin) -> dict:
    """{input name: array}: `map` first, then arrays named like inputs, then x and y."""
    chosen = {}
    mapping = cfg.get("map") or {}
    if not isinstance(mapping, dict):
        raise DataError("train.data.map must map input names to array names, such as "
                        "{image: x, label: y}")
    for inp, name in mapping.items():
        if inp not in net.inputs:
            raise DataError(f"train.data.map: '{inp}' is not an input"
                            f"{did_you_mean(inp, net.inputs)}; the inputs are "
                            f"{', '.join(net.inputs)}")
        if name not in arrays:
            raise DataError(f"train.data.map: {origin} has no array '{name}'"
                            f"{did_you_mean(name, arrays)}; it has {', '.join(arrays)}")
        chosen[inp] = name
    for inp in net.inputs:
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
                            f"{did_you_mean(unused[0], net.inputs)}; the inputs are "
                            f"{', '.join(net.inputs)}")
    missing = [i for i in net.inputs if i not in chosen]
    if missing:
        raise DataError(f"{origin} has no array for input '{missing[0]}' "
                        f"{_expected(net.inputs[missing[0]])}; it holds {', '.join(arrays)}. "
                        f"Name the arrays after the inputs ({', '.join(net.inputs)}) or add "
                        f"map: {{{missing[0]}: <array name>}} to train.data")
    return {inp: np.asarray(arrays[chosen[inp]]) for inp in net.inputs}


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

def _split(net, cfg, fitted):
    """Index arrays (train, validation, test); validation and test None when not asked for."""
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
    classes = _classes(net, fitted)
    test, order = _take(order, classes, want["test_split"], rng)
    val, train = _take(order, classes, want["validation_split"], rng)
    return train, (val if len(val) else None), (test if len(test) else None)


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

def as_batch(net, data, require_labels: bool = True) -> dict:
    """Check user data against the network's inputs; {input name: C-contiguous array}.

    `data` is {input name: array}, a single array (networks with one feature input) or a
    tuple (x, y) for the first feature and first label input. Arrays are reshaped where the
    values per sample agree with the declared shape and cast to the declared dtype.
    Label inputs are required only when `require_labels`. Raises DataError.
    """
    feats = net.feature_inputs
    if len(feats) == 1 and not (require_labels and net.label_inputs):
        # predict(x) or predict({'x': x}), the calls a latency-bound caller makes: nothing
        # to name or match
        only = data if isinstance(data, np.ndarray) else \
            data.get(feats[0]) if isinstance(data, dict) and len(data) == 1 else None
        if only is not None:
            return {feats[0]: fit_input(net, feats[0], only, f"input '{feats[0]}'")}
    named = _name_batch(net, data)
    for name in named:
        if name not in net.inputs:
            raise DataError(f"unknown input {name!r}{did_you_mean(name, net.inputs)}; the "
                            f"network's inputs are {_signature(net)}")
    labels = set(net.label_inputs)
    needed = [n for n in net.inputs if require_labels or n not in labels]
    missing = [n for n in needed if named.get(n) is None]
    if missing:
        have = ", ".join(n for n in named if named[n] is not None) or "nothing"
        why = " (labels are needed to train and evaluate)" if missing[0] in labels else ""
        raise DataError(f"missing input '{missing[0]}' {_expected(net.inputs[missing[0]])}"
                        f"{why}; got {have}. The network's inputs are {_signature(net)}")
    batch = {n: fit_input(net, n, named[n], f"input '{n}'")
             for n in net.inputs if named.get(n) is not None}
    if len(batch) > 1:
        _same_batch_size(batch, "the inputs")
    return batch


def _name_batch(net, data) -> dict:
    feats, labels = net.feature_inputs, net.label_inputs
    if isinstance(data, dict):
        return dict(data)
    if isinstance(data, tuple):
        if len(data) != 2:
            raise DataError(f"a tuple of data is (x, y), got a tuple of {len(data)}; pass a "
                            f"dict {{input name: array}} for {_signature(net)}")
        if not labels and data[1] is not None:
            raise DataError(f"got (x, y), but this network has no label input "
                            f"({_signature(net)}); pass x alone or a dict")
        out = {feats[0]: data[0]} if feats else {}
        if labels:
            out[labels[0]] = data[1]
        return out
    if data is None or isinstance(data, (str, bytes, set)):
        raise DataError(f"data must be a dict {{input name: array}}, an array or a tuple (x, y);"
                        f" got {type(data).__name__}")
    if len(feats) != 1:
        raise DataError(f"got a single array, but this network has {len(feats)} feature "
                        f"inputs ({', '.join(feats)}); pass a dict {{input name: array}}")
    return {feats[0]: data}


def fit_input(net, name: str, value, what: str) -> np.ndarray:
    """One array fitted to input `name`: numeric, reshaped, finite, cast, contiguous."""
    d = net.inputs[name]
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise DataError(f"{what}: {_want(d)}, got something that is not an array ({e})"
                            ) from None
    if arr.dtype.kind not in "biuf":
        kind = _KINDS.get(arr.dtype.kind, str(arr.dtype))
        raise DataError(f"{what}: {_want(d)}, got {_show(arr)}: {kind}, not numbers")
    if arr.ndim == 0 or len(arr) == 0 or arr.shape[1:] != tuple(d.shape):
        arr = _fit_shape(arr, d, what, _want(d))
    if not d.dtype.startswith("float"):
        return np.ascontiguousarray(_check_integers(net, name, arr, what), dtype=d.dtype)
    if arr.dtype.kind == "f" and not _all_finite(arr):
        _refuse_non_finite(arr, d, what)
    if arr.dtype == d.dtype and arr.flags.c_contiguous:
        return arr
    with np.errstate(over="ignore"):
        fitted = np.ascontiguousarray(arr, dtype=d.dtype)
    if fitted.dtype.itemsize < arr.dtype.itemsize and not _all_finite(fitted):
        big = np.abs(arr).max()
        raise DataError(f"{what}: values up to {big:.4g} overflow {d.dtype}, whose largest "
                        f"is {np.finfo(fitted.dtype).max:.4g}")
    return fitted


_check_module = None


def _checks():
    """nngraph.kernels.cpu.check, imported on first use: it loads numba."""
    global _check_module
    if _check_module is None:
        from .kernels.cpu import check
        _check_module = check
    return _check_module


def _all_finite(arr) -> bool:
    """No NaN or infinity in float array `arr`: a compiled scan of the exponent bits for
    float32/float64, numpy for other widths."""
    if arr.dtype.char not in "fd":
        return bool(np.isfinite(arr).all())
    return (_check_module or _checks()).all_finite(
        arr if arr.flags.c_contiguous else np.ascontiguousarray(arr))


def _range(arr):
    """(min, max) of a numeric array: compiled for C-contiguous int64/int32 labels."""
    if arr.dtype not in (np.int64, np.int32) or not arr.flags.c_contiguous:
        return arr.min(), arr.max()
    return _checks().int_range(arr)


def _refuse_non_finite(arr, d, what):
    bad = ~np.isfinite(arr)
    nan = int(np.isnan(arr).sum())
    counts = [f"{nan} NaN"] if nan else []
    counts += [f"{int(bad.sum()) - nan} infinite"] if bad.sum() > nan else []
    first = int(np.argmax(bad.reshape(len(arr), -1).any(axis=1)))
    raise DataError(f"{what}: expected finite {d.dtype} values, got {' and '.join(counts)}"
                    f" (the first in sample {first} of {_show(arr)})")


def _want(d) -> str:
    return f"expected an array of shape {_expected(d)}"


def _fit_shape(arr, d, what, want):
    shape = tuple(d.shape)
    if arr.ndim == 0:
        raise DataError(f"{what}: {want}, got a single number; arrays start with the batch axis")
    if len(arr) == 0:
        raise DataError(f"{what}: {want}, got {_show(arr)}: no samples")
    per = arr.shape[1:]
    if per == shape:
        return arr
    n_per, n_want = math.prod(per), math.prod(shape)
    got = f"got {_show(arr)}: {_count(per)} values per sample, the input takes {_count(shape)}"
    if n_per == n_want:
        unit = [s for s in per if s != 1], [s for s in shape if s != 1]
        if unit[0] == unit[1] or len(unit[0]) <= 1 or len(unit[1]) <= 1:
            return arr.reshape((len(arr),) + shape)      # flattened or unflattened: unambiguous
        hint = " Reshape it yourself if that layout is what you mean"
        if sorted(per) == sorted(shape):
            hint = " The axes are in another order"
            if per == shape[1:] + shape[:1]:
                axes = ", ".join(map(str, (0, len(shape)) + tuple(range(1, len(shape)))))
                hint = f" It looks channels-last; nngraph is channels-first: x.transpose({axes})"
        raise DataError(f"{what}: {want}, got {_show(arr)}: the same {n_want} values per "
                        f"sample in a different shape.{hint}")
    if arr.shape == shape or (n_want > 1 and arr.size == n_want):
        got += ". It looks like one sample without the batch axis: pass x[None]"
    elif shape == () and arr.ndim == 2:
        got += (f". It looks like one-hot rows: pass class indices y.argmax(axis=1), or "
                f"declare the input with shape [{per[0]}]")
    elif arr.ndim != len(shape) + 1:
        got += f" ({arr.ndim} dimensions where {len(shape) + 1} are expected)"
    raise DataError(f"{what}: {want}, {got}")


def _check_integers(net, name, arr, what):
    dt = np.dtype(net.inputs[name].dtype)
    if arr.dtype.kind == "f" and arr.size:
        frac = arr != np.round(arr)
        if frac.any():
            i = int(np.argmax(frac.reshape(len(arr), -1).any(axis=1)))
            v = arr.reshape(-1)[int(np.argmax(frac.reshape(-1)))]
            raise DataError(f"{what}: expected whole numbers ({dt}), got {v} (sample {i}) in "
                            f"{_show(arr)}; integer inputs hold class or token indices")
    if arr.size:
        lo, hi = _range(arr)
        low, high = _integer_limits(net, name)
        if low <= lo and hi <= high:
            return arr
        info = np.iinfo(dt)
        if lo < info.min or hi > info.max:
            raise DataError(f"{what}: values from {lo} to {hi} do not fit {dt}")
        for bound, why in _index_bounds(net, name):
            if lo < 0 or hi >= bound:
                v = lo if lo < 0 else hi
                i = int(np.argmax((arr.reshape(len(arr), -1) == v).any(axis=1)))
                raise DataError(f"{what}: value {v} (sample {i}) is outside [0, {bound}): {why}")
    return arr


def _integer_limits(net, name) -> tuple[int, int]:
    """The smallest and largest value integer input `name` accepts (its dtype's range, cut to
    [0, bound) by every use as an index); kept on the network, which does not change."""
    cache = net.__dict__.setdefault("_integer_limits", {})
    if name not in cache:
        info = np.iinfo(np.dtype(net.inputs[name].dtype))
        bounds = [bound for bound, _ in _index_bounds(net, name)]
        cache[name] = ((0, min(bounds) - 1) if bounds else (int(info.min), int(info.max)))
    return cache[name]


def _index_bounds(net, name):
    """(bound, reason) for every use of integer input `name` as an index: class labels of a
    loss whose scores have shape (K,), and embedding tokens (attribute `vocab`)."""
    out = []
    shape = net.inputs[name].shape
    for user in net.graph.successors(name):
        node = net.graph.nodes[user]
        ins = list(node.get("inputs") or [])
        attrs = node.get("attrs") or {}
        if node.get("kind") == "loss" and len(ins) == 2 and ins[1] == name and shape == ():
            scores = net.graph.nodes[ins[0]].get("shape") or ()
            if len(scores) == 1:
                out.append((scores[0], f"loss '{user}' takes class indices for the "
                                       f"{scores[0]} scores of '{ins[0]}'"))
        elif "vocab" in attrs:
            out.append((attrs["vocab"], f"layer '{user}' has a vocabulary of {attrs['vocab']}"))
    return out


def _same_batch_size(arrays, what):
    sizes = {k: len(a) for k, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"'{k}' has {n}" for k, n in sizes.items())
        raise DataError(f"{what} disagree on the number of samples: {listed}")


# ---------------------------------------------------------------- wording

def _expected(d) -> str:
    """'(N, 1, 28, 28) float32'; '(N,) int64' for one value per sample."""
    dims = ", ".join(["N", *map(str, d.shape)])
    return f"({dims},) {d.dtype}" if not d.shape else f"({dims}) {d.dtype}"


def _show(arr) -> str:
    return f"{tuple(arr.shape)} {arr.dtype}"


def _count(shape) -> str:
    """'1x28x28 = 784'; '784' where there is no arithmetic."""
    n = math.prod(shape)
    return f"{'x'.join(map(str, shape))} = {n}" if len(shape) > 1 else str(n)


def _signature(net) -> str:
    return ", ".join(f"{k} {_expected(d)}" for k, d in net.inputs.items())
