"""Starting from another model's parameters: `train: {init_from: FILE}` in a spec,
`nngraph train SPEC --weights FILE`, `Model.load_weights(FILE)`.

Parameters are matched by name, `layer.param`, as Caffe's `-weights` and Keras'
`load_weights(by_name=True)` match them: a layer of this network that FILE has gets FILE's
values (its batchnorm running statistics too); a layer FILE lacks keeps its initial values;
a layer whose shapes differ is an error naming the layer and both shapes, unless it is listed
under `skip` (then it keeps its initial values, as for a new head of another size). FILE is
a model file (`.nnz`, from `Model.save` or `nngraph train`) or an ONNX model (`.onnx`,
imported as `nngraph import` would). Nothing is copied unless every layer fits: a failed
load leaves the model as it was.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .errors import NNGraphError


@dataclass
class Loaded:
    """What a load did: `file`, and the layers whose parameters came from it (`loaded`),
    those listed under skip (`skipped`), and those it did not have (`kept`: their initial
    values stand)."""
    file: str
    loaded: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    kept: list = field(default_factory=list)

    def line(self) -> str:
        """One line for a person: 'loaded 5 layers from F (skipped: fc); initial: head'."""
        parts = [f"loaded {len(self.loaded)} layer{'s' if len(self.loaded) != 1 else ''} "
                 f"from {self.file}"]
        if self.skipped:
            parts.append(f"skipped: {', '.join(self.skipped)}")
        if self.kept:
            parts.append(f"initial values: {', '.join(self.kept)}")
        return "; ".join(parts)


def source(net, weights=None):
    """(file, skip) a network of `net` starts from: `weights` (a path, as compile's
    weights= and `--weights` give it) else the spec's train.init_from, its file relative to
    the spec's folder; the spec's skip list either way. None when it starts from neither."""
    init = net.train.get("init_from") or {}
    if weights is None and not init:
        return None
    from .data import resolve_path
    path = os.fspath(weights) if weights is not None else resolve_path(net, init["file"])
    return path, tuple(init.get("skip", ()))


def read(path: str) -> tuple[dict, dict]:
    """({'layer.param': array}, {'layer.key': array} of running statistics) of a model file
    or an ONNX model, without building a model from it. Raises ModelFileError (or the
    ONNX import's error) for a bad file."""
    if not os.path.isfile(path):
        raise NNGraphError(f"init_from: {path}: no such file")
    if path.lower().endswith(".onnx"):
        from .onnx import onnx_to_spec
        from .spec import load_dict
        spec, params, state = onnx_to_spec(path)
        shapes = {k: p.spec.shape for k, p in load_dict(spec, path).param_table().items()}
        flat = {f"{layer}.{p}": np.asarray(a).reshape(shapes[f"{layer}.{p}"])
                for layer, ps in params.items() for p, a in ps.items()}
        return flat, {f"{layer}.{k}": np.asarray(a) for layer, d in state.items()
                      for k, a in d.items()}
    from .persist import read_model
    _, _, saved = read_model(path)
    return dict(saved.params), dict(saved.state)


def _layer(key: str) -> str:
    return key.rsplit(".", 1)[0]


def apply(model, path: str, skip=()) -> Loaded:
    """Copy the parameters (and running statistics) of the model in `path` into `model` by
    layer name; returns what was loaded. `skip`: layer names to leave at their initial
    values whatever the file has."""
    ours = dict(model.params)
    ours.update({f"{layer}.{k}": v for layer, d in model.state.items() for k, v in d.items()})
    params, state = read(path)
    theirs = {**params, **state}
    report, copies = plan({k: v.shape for k, v in ours.items()}, theirs, skip, path,
                          model.net.name)
    for k in copies:                  # in place: the backend's storage stays the same
        ours[k][...] = theirs[k].astype(ours[k].dtype)
    return report


def preview(net, path: str, skip=()) -> Loaded:
    """What loading `path` into a model of `net` would do (for `nngraph summary`), without
    a model: the same checks and errors as apply."""
    params, _ = read(path)
    ours = {k: tuple(p.spec.shape) for k, p in net.param_table().items()}
    return plan(ours, params, skip, path, net.name)[0]


def plan(ours: dict, theirs: dict, skip, path: str, name: str) -> tuple[Loaded, list]:
    """(what a load does, the keys to copy) from this network's {key: shape} and the file's
    {key: array}; raises for a skip name that is no layer of ours, a layer whose shapes
    differ, and a file that has none of our layers."""
    skip = set(skip)
    unknown = sorted(skip - {_layer(k) for k in ours})
    if unknown:
        raise NNGraphError(f"init_from skip: {', '.join(unknown)}: no layer with parameters "
                           f"of that name in {name}")
    report, copies = Loaded(path), []
    for layer in dict.fromkeys(_layer(k) for k in ours):
        keys = [k for k in ours if _layer(k) == layer]
        if layer in skip:
            report.skipped.append(layer)
        elif not any(k in theirs for k in keys):
            report.kept.append(layer)
        else:
            for k in keys:
                there = tuple(theirs[k].shape) if k in theirs else None
                if there != tuple(ours[k]):
                    raise NNGraphError(
                        f"init_from {path}: layer '{layer}': {k} has shape "
                        f"{list(ours[k])} here and {_shape(there)} in the file; list "
                        f"'{layer}' under init_from's skip to keep its initial values")
                copies.append(k)
            report.loaded.append(layer)
    if not report.loaded:
        raise NNGraphError(f"init_from {path}: none of its layers ({_names(theirs)}) is a "
                           f"layer of {name} with parameters of the same names")
    return report, copies


def _shape(shape) -> str:
    return "no such parameter" if shape is None else str(list(shape))


def _names(arrays: dict) -> str:
    layers = list(dict.fromkeys(_layer(k) for k in arrays))
    return ", ".join(layers[:8]) + (", ..." if len(layers) > 8 else "")
