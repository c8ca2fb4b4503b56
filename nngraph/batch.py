"""The checks on every batch: user data fitted to a network's inputs.

`as_batch` is the one place user data is checked; everything that reaches a kernel has been
through it (or through `data.load_training_data`, which applies the same checks):

    >>> batch = as_batch(net, {"image": x, "label": y}, require_labels=True)
    DataError: input 'image': expected an array of shape (N, 1, 28, 28) float32, got
    (64, 3, 28, 28) float64: 3x28x28 = 2352 values per sample, the input takes 1x28x28 = 784
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DataError, did_you_mean

_KINDS = {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers",
          "M": "dates", "m": "time spans", "V": "records"}


def as_batch(net, data, require_labels: bool = True, unscanned=frozenset()) -> dict:
    """Check user data against the network's inputs; {input name: C-contiguous array}.

    `data` is {input name: array}, a single array (networks with one feature input) or a
    tuple (x, y) for the first feature and first label input. Arrays are reshaped where the
    values per sample agree with the declared shape and cast to the declared dtype (a
    Model passes its own `model.net`, which declares float inputs in the model's dtype).
    Label inputs are required only when `require_labels`; sampled inputs (`sample:`) never
    are (the Model draws those the data lacks, nngraph/sampling.py). Raises DataError.

    Inputs named in `unscanned` are not scanned for NaN and infinity when they are passed
    as they run (declared dtype, C-contiguous): the caller checks them on the way and then
    calls refuse_non_finite (the CPU backend's predict, see codegen Site.check_input).
    """
    feats = net.feature_inputs
    if len(feats) == 1 and not (require_labels and net.label_inputs):
        # predict(x) or predict({'x': x}), the calls a latency-bound caller makes: nothing
        # to name or match
        name = feats[0]
        only = data if isinstance(data, np.ndarray) else \
            data.get(name) if isinstance(data, dict) and len(data) == 1 else None
        if only is not None:
            return {name: fit_input(net, name, only, f"input '{name}'", name not in unscanned)}
    named = _name_batch(net, data)
    for name in named:
        if name not in net.inputs:
            raise DataError(f"unknown input {name!r}{did_you_mean(name, net.inputs)}; the "
                            f"network's inputs are {_signature(net)}")
    labels, sampled = set(net.label_inputs), set(net.sampled_inputs)
    needed = [n for n in net.inputs if (require_labels or n not in labels) and n not in sampled
              and (require_labels or n in _read_by_outputs(net))]
    missing = [n for n in needed if named.get(n) is None]
    if missing:
        have = ", ".join(n for n in named if named[n] is not None) or "nothing"
        why = " (labels are needed to train and evaluate)" if missing[0] in labels else ""
        raise DataError(f"missing input '{missing[0]}' {_expected(net.inputs[missing[0]])}"
                        f"{why}; got {have}. The network's inputs are {_signature(net)}")
    batch = {n: fit_input(net, n, named[n], f"input '{n}'", n not in unscanned)
             for n in net.inputs if named.get(n) is not None}
    if len(batch) > 1:
        _same_batch_size(batch, "the inputs")
    return batch


def _read_by_outputs(net) -> set:
    """The inputs the outputs depend on, all that predict needs: a GAN's generator samples
    need its codes, not the real images its discriminator reads. Kept on the network."""
    cache = net.__dict__
    if "_read_by_outputs" not in cache:
        seen, stack = set(), list(net.outputs)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(net.graph.predecessors(n))
        cache["_read_by_outputs"] = {n for n in net.inputs if n in seen} if net.outputs \
            else set(net.inputs)
    return cache["_read_by_outputs"]


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
    if not feats and len(net.sampled_inputs) == 1:       # a generator's codes
        return {net.sampled_inputs[0]: data}
    if len(feats) != 1:
        raise DataError(f"got a single array, but this network has {len(feats)} feature "
                        f"inputs ({', '.join(feats)}); pass a dict {{input name: array}}")
    return {feats[0]: data}


_DTYPES: dict = {}


def _runs_as_is(d, arr) -> bool:
    """Is arr already as the kernels take float input d: an ndarray of the declared dtype,
    (N,) + shape with N > 0, C-contiguous? Then fit_input, when it need not scan, returns it
    after these tests alone, in a fraction of the time its checks take in turn (which
    matters to a batch-1 predict, itself only microseconds). Integer inputs always go
    through the checks of their range."""
    dtype = _DTYPES.get(d.dtype)
    if dtype is None:
        dtype = _DTYPES[d.dtype] = np.dtype(d.dtype) if d.dtype.startswith("float") else False
    return type(arr) is np.ndarray and arr.dtype is dtype and arr.shape[1:] == d.shape \
        and len(arr) > 0 and arr.flags.c_contiguous


def fit_input(net, name: str, value, what: str, scan: bool = True) -> np.ndarray:
    """One array fitted to input `name`: numeric, reshaped, finite, cast, contiguous. Without
    `scan`, an array already in the declared dtype and C-contiguous is not checked for NaN
    and infinity (the caller does it another way)."""
    d = net.inputs[name]
    if not scan and _runs_as_is(d, value):
        return value
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
    ready = arr.dtype == d.dtype and arr.flags.c_contiguous
    if (scan or not ready) and arr.dtype.kind == "f" and not _all_finite(arr):
        _refuse_non_finite(arr, d, what)
    if ready:
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


def refuse_non_finite(net, name: str, arr: np.ndarray) -> None:
    """Raise the DataError of fit_input if float input `name`'s array holds NaN or infinity."""
    if not _all_finite(arr):
        _refuse_non_finite(arr, net.inputs[name], f"input '{name}'")


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
