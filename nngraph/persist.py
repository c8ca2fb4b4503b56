"""Model <-> .nnz file (see nngraph/modelfile.py for the format and its checks).

A model file is enough to rebuild the model: the spec, parameters, optimizer state,
batchnorm statistics, the step and epoch counters and the training history.

Loading checks everything before it builds anything: every meta.json field by type and
range, the spec, and then, from the network the spec makes, the exact tensors each table
must hold, before their data is read (so a file cannot make nngraph read or allocate more
than the model it claims to hold). Every problem is a ModelFileError starting with the path.
"""
from __future__ import annotations

import os

import numpy as np

from . import modelfile
from .errors import ModelFileError, SpecError
from .version import __version__

MAX_COUNT = (1 << 63) - 1         # step, epoch and seed: what an int64 holds


def save_model(model, path: str) -> None:
    meta = {
        "name": model.net.name, "spec_file": model.net.file, "backend": model.backend,
        "dtype": str(model.dtype), "seed": model.seed, "step": model.step,
        "epoch": model.epoch, "optimizer": model.optimizer.config,
        "history": model.history, "nngraph_version": __version__,
    }
    modelfile.save(path, model.net.spec, model.params, model.opt_state, model.flat_state, meta)


def read_model(path: str):
    """(network, settings, saved tensors) of a model file, every field and tensor checked
    against what the network and settings make; Model.load_model builds the model from them.
    Raises ModelFileError for a bad or mismatching file."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise ModelFileError(f"load_model expects a path to a .nnz file, got "
                             f"{type(path).__name__}") from None
    found = {}

    def expect(spec: dict, meta: dict) -> dict:
        settings = _settings(path, meta)
        net = _network(path, spec)
        found.update(net=net, settings=settings)
        return _expected_tensors(net, settings)

    saved = modelfile.load(path, expect)
    net, settings = found["net"], found["settings"]
    for name, tensors in ((modelfile.PARAMS, saved.params), (modelfile.OPTIMIZER, saved.optimizer),
                          (modelfile.STATE, saved.state)):
        _check_finite(path, name, tensors)
    if settings["spec_file"]:
        net.file = settings["spec_file"]          # so relative data paths still resolve
    return net, settings, saved


def restore(model, saved, settings: dict, path: str) -> None:
    """Put a file's parameters, optimizer and layer state and counters into `model`, built
    from its network and settings (read_model)."""
    expected = {k: (v.shape, v.dtype) for k, v in model.params.items()}
    modelfile.check_params(saved.params, expected, path)
    for k, v in saved.params.items():
        model.params[k][...] = v
    if settings["optimizer"]:
        model.set_optimizer(settings["optimizer"])
    _restore(model.opt_state, saved.optimizer, path, "optimizer state tensors")
    _restore(model.flat_state, saved.state, path, "layer state tensors")
    model.step, model.epoch = settings["step"], settings["epoch"]
    model.history = settings["history"]


# ---------------------------------------------------------------------------- meta.json

def _settings(path: str, meta: dict) -> dict:
    """The meta.json fields a model is rebuilt from, each checked by type and range."""
    from .backends import BACKENDS, DTYPES
    from .optimizers import checked_config

    def bad(field, expected, value):
        return ModelFileError(f"{path}: meta.json: {field} must be {expected}, "
                              f"got {modelfile.show(value)}")

    out = {}
    for field in ("step", "epoch", "seed"):
        value = meta.get(field, 0)
        if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT):
            raise bad(field, "an integer from 0 to 2**63 - 1", value)
        out[field] = value
    for field, choices, default in (("dtype", DTYPES, "float32"), ("backend", BACKENDS, "reference")):
        value = meta.get(field, default)
        if not (isinstance(value, str) and value in choices):
            raise bad(field, "one of " + ", ".join(choices), value)
        out[field] = value
    for field in ("name", "spec_file"):
        value = meta.get(field)
        if value is not None and not isinstance(value, str):
            raise bad(field, "a string", value)
        out[field] = value
    optimizer = meta.get("optimizer")
    if optimizer:
        try:
            optimizer = checked_config(optimizer)
        except ValueError as e:
            raise ModelFileError(f"{path}: meta.json: {e}") from None
    elif optimizer not in (None, {}):
        raise bad("optimizer", "a mapping with a type", optimizer)
    out["optimizer"] = optimizer or None
    out["history"] = _history(meta.get("history"), bad)
    return out


def _history(history, bad) -> dict:
    """{metric: [float, ...]}; a record, so NaN and infinities are kept as they were."""
    if history is None:
        return {}
    if not isinstance(history, dict):
        raise bad("history", "a mapping from metric names to lists of numbers", history)
    out = {}
    for key, values in history.items():
        field = f"history[{modelfile.show(key)}]"
        if not isinstance(values, list):
            raise bad(field, "a list of numbers", values)
        out[key] = []
        for v in values:
            try:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise TypeError
                out[key].append(float(v))
            except (TypeError, OverflowError):      # OverflowError: an int too large for a float
                raise bad(field, "a list of numbers", v) from None
    return out


# ---------------------------------------------------------------------------- tensors

def _network(path: str, spec: dict):
    from . import spec as spec_module
    try:
        return spec_module.load_dict(spec, file=f"{path}:spec.json")
    except SpecError as e:
        raise ModelFileError(f"{path}: the spec stored in the model is not valid:\n{e}") from None


def _expected_tensors(net, settings: dict) -> dict:
    """{"params" | "optimizer" | "state": {name: (shape, dtype)}}: what the model that the
    network and settings make has, named as Model names them (Model.params, opt_state,
    flat_state); load_model checks the model it builds against the file once more."""
    from .optimizers import Optimizer
    dtype = np.dtype(settings["dtype"])
    table = net.param_table()
    slots = Optimizer(settings["optimizer"] or net.train.get("optimizer")).slots
    return {
        "params": {k: (tuple(p.spec.shape), dtype) for k, p in table.items()},
        "optimizer": {f"{k}/{slot}": (tuple(p.spec.shape), dtype)
                      for k, p in table.items() if p.trainable for slot in slots},
        "state": {f"{layer}.{name}": (tuple(spec.shape), dtype) for layer in net.order()
                  for name, spec in net.node(layer).get("state", {}).items()},
    }


def _check_finite(path: str, member: str, tensors: dict) -> None:
    for k, v in tensors.items():
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            bad = int(v.size - np.count_nonzero(np.isfinite(v)))
            raise ModelFileError(f"{path}: {member}: '{k}' holds {bad} NaN or infinite "
                                 f"value{'s' if bad != 1 else ''}; a model with them can "
                                 "neither predict nor train")


def _restore(target: dict, saved: dict, path: str, what: str) -> None:
    """Copy saved arrays into the model's arrays of the same names and shapes."""
    expected = {k: (v.shape, v.dtype) for k, v in target.items()}
    if saved or target:
        modelfile.check_params(saved, expected, path, what=what)
    for k, v in saved.items():
        target[k][...] = np.asarray(v, dtype=target[k].dtype)
