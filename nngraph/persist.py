"""Model <-> .nnz file (see nngraph/modelfile.py for the format and its checks).

A model file is enough to rebuild the model: the spec, parameters, optimizer state,
batchnorm statistics, the step and epoch counters and the training history.
"""
from __future__ import annotations

import numpy as np

from . import __version__, modelfile
from .errors import ModelFileError, SpecError


def save_model(model, path: str) -> None:
    meta = {
        "name": model.net.name, "spec_file": model.net.file, "backend": model.backend,
        "dtype": str(model.dtype), "seed": model.seed, "step": model.step,
        "epoch": model.epoch, "optimizer": model.optimizer.config,
        "history": model.history, "nngraph_version": __version__,
    }
    modelfile.save(path, model.net.spec, model.params, model.opt_state, model.flat_state, meta)


def load_model(path: str, backend: str | None = None):
    """Rebuild a saved model. Raises ModelFileError for a bad or mismatching file."""
    from . import spec as spec_module
    from .model import Model
    saved = modelfile.load(path)
    meta = saved.meta
    try:
        net = spec_module.load_dict(saved.spec, file=f"{path}:spec.json")
    except SpecError as e:
        raise ModelFileError(f"{path}: the spec stored in the model is not valid:\n{e}") from None
    if meta.get("spec_file"):
        net.file = meta["spec_file"]          # so relative data paths still resolve
    try:
        model = Model(net, backend or meta.get("backend", "reference"),
                      seed=int(meta.get("seed", 0)), dtype=meta.get("dtype", "float32"))
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: bad metadata: {e}") from None
    expected = {k: (v.shape, v.dtype) for k, v in model.params.items()}
    modelfile.check_params(saved.params, expected, path)
    for k, v in saved.params.items():
        model.params[k][...] = v
    if meta.get("optimizer"):
        model.set_optimizer(meta["optimizer"])
    _restore(model.opt_state, saved.optimizer, path, "optimizer state")
    flat = model.flat_state
    _restore(flat, saved.state, path, "layer state")
    model.step, model.epoch = int(meta.get("step", 0)), int(meta.get("epoch", 0))
    model.history = {k: list(v) for k, v in (meta.get("history") or {}).items()}
    return model


def _restore(target: dict, saved: dict, path: str, what: str) -> None:
    """Copy saved arrays into the model's arrays of the same names and shapes."""
    expected = {k: (v.shape, v.dtype) for k, v in target.items()}
    if saved or target:
        try:
            modelfile.check_params(saved, expected, path)
        except ModelFileError as e:
            raise ModelFileError(f"{what}: {e}") from None
    for k, v in saved.items():
        target[k][...] = np.asarray(v, dtype=target[k].dtype)
