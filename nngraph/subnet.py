"""The part of a network downstream of one layer, as a network of its own: a VAE's decoder
fed codes of the layer `z`, a classifier's head fed features.

    >>> part = Downstream(model, "z")          # what Model.predict_from builds and keeps
    >>> images = part.predict(np.random.default_rng(0).normal(size=(64, 16)))

`downstream(net, layer)` cuts the graph: `layer` becomes an input of its shape, and the
network keeps the outputs computed from it and the layers between; losses are dropped.
Layer names stay, so the parameters are the whole model's ('dec_hidden.W'), read from the
model at each call: a part predicts with the weights the model has then.
"""
from __future__ import annotations

from dataclasses import replace

import networkx as nx
import numpy as np

from .backends import executor
from .batch import as_batch
from .errors import DataError, did_you_mean
from .graph import InputDef, Network
from .program import build_program


def downstream(net: Network, layer: str) -> Network:
    """The network from `layer` (now an input) to the outputs computed from it. Raises
    DataError when `layer` names no layer, when no output depends on it, or when a layer
    on the way also reads something not computed from it (another input, a skip
    connection from before it)."""
    names = net.layers()
    if layer not in names:
        raise DataError(f"'{layer}' is not a layer of '{net.name}'"
                        f"{did_you_mean(layer, names)}; layers are {', '.join(names)}")
    g = net.graph
    below = nx.descendants(g, layer)
    outputs = [o for o in net.outputs if o in below]
    if not outputs:
        raise DataError(f"no output of '{net.name}' ({', '.join(net.outputs)}) is computed "
                        f"from layer '{layer}'")
    keep = set().union(*(nx.ancestors(g, o) & below for o in outputs)) | set(outputs)
    for n in sorted(keep):
        d = g.nodes[n]
        outside = [i for i in d["inputs"] if i != layer and i not in keep]
        if outside:
            raise DataError(f"layer '{n}', downstream of '{layer}', also reads "
                            f"{', '.join(repr(i) for i in outside)}, which is not computed "
                            f"from '{layer}': the part after '{layer}' is not a network "
                            "of its own")
        foreign = [k for k in d.get("borrowed", {}).values() if k.split(".")[0] not in keep]
        if foreign:
            raise DataError(f"layer '{n}', downstream of '{layer}', borrows "
                            f"{', '.join(foreign)} from a layer before it")
    d = g.nodes[layer]
    sub = g.subgraph(keep | {layer}).copy()
    sub.nodes[layer].update(kind="input", op=None, attrs={}, activation=None, inputs=[],
                            params={}, state={}, cluster=())
    sub.remove_edges_from(list(sub.in_edges(layer)))
    inputs = {layer: InputDef(layer, tuple(d["shape"]), d["dtype"])}
    return replace(net, name=f"{net.name}[{layer}:]", graph=sub, inputs=inputs,
                   outputs=outputs, losses=[], clusters={}, warnings=[])


class Downstream:
    """Predicts the outputs of `model` from values of its layer `layer`, with the model's
    backend, dtype, parameters and layer state (batchnorm statistics)."""

    def __init__(self, model, layer: str):
        self.model, self.layer = model, layer
        self.net = downstream(model.net, layer)
        self.program = build_program(self.net)
        self.executor = executor(self.program, model.backend, model.dtype,
                                 device=model.executor.device_index)

    def predict(self, values, batch_size: int = 256):
        """The outputs for `values` of the layer (an array with the batch first, or
        {layer: array}): an array for one output, a dict for several."""
        data = values if isinstance(values, dict) else {self.layer: values}
        batch = as_batch(self.net, data, require_labels=False)
        params = {k: self.model.params[k] for k in self.program.params}
        n = len(batch[self.layer])
        parts = [self.executor.predict(params, self.model.state,
                                       {k: v[i:i + batch_size] for k, v in batch.items()})
                 for i in range(0, max(n, 1), batch_size)]
        outs = {k: np.concatenate([p[k] for p in parts]) for k in self.program.outputs}
        return next(iter(outs.values())) if len(outs) == 1 else outs


def layer_values(model, layer: str, data, batch_size: int = 256) -> np.ndarray:
    """The values of `layer` for `data` (the network's feature inputs), as predict computes
    them: a VAE's mean codes of a dataset. Runs only the layers `layer` needs."""
    net = model.net
    if layer not in net.layers():
        raise DataError(f"'{layer}' is not a layer of '{net.name}'"
                        f"{did_you_mean(layer, net.layers())}")
    need = nx.ancestors(net.graph, layer) | {layer}
    inputs = {k: v for k, v in net.inputs.items() if k in need}
    up = replace(net, graph=net.graph.subgraph(need).copy(), inputs=inputs, outputs=[layer],
                 losses=[], name=f"{net.name}[:{layer}]", warnings=[])
    run = executor(build_program(up), model.backend, model.dtype,
                   device=model.executor.device_index)
    batch = as_batch(up, {k: v for k, v in data.items() if k in inputs}, require_labels=False)
    params = {k: model.params[k] for k in up.param_table()}
    n = len(next(iter(batch.values())))
    return np.concatenate([run.predict(params, model.state,
                                       {k: v[i:i + batch_size] for k, v in batch.items()})[layer]
                           for i in range(0, n, batch_size)])
