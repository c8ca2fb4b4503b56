"""The graph IR: a validated network as a networkx DiGraph with every shape known.

Nodes are named as in the spec. Each node's data:
    kind        'input' | 'layer' | 'loss'
    op          OpDef (None for inputs)
    attrs       validated Attrs
    activation  (name, Attrs) or None
    inputs      ordered input node names (an edge set loses order and repeats)
    shape       output shape without the batch dimension
    dtype       'float32', 'int64', ...
    params      {param: ParamSpec}       state   {name: StateSpec}
    cluster     tuple of enclosing block instances
    pos         (line, col) in the spec
"""
from __future__ import annotations

import math
from functools import cached_property
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from .ops.base import ParamSpec


@dataclass(frozen=True)
class InputDef:
    name: str
    shape: tuple
    dtype: str
    sample: str | None = None         # 'normal' | 'uniform': drawn afresh, never data


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as the optimizer sees it, addressed as 'layer.param'."""
    key: str
    layer: str
    name: str
    spec: ParamSpec
    init: Any
    trainable: bool
    lr_mult: float
    regularizer: dict


@dataclass
class Network:
    name: str
    file: str
    graph: nx.DiGraph
    inputs: dict                      # name -> InputDef, in declaration order
    outputs: list
    losses: list                      # loss node names
    train: dict = field(default_factory=dict)
    clusters: dict = field(default_factory=dict)   # block instance -> block name
    warnings: list = field(default_factory=list)
    spec: dict = field(default_factory=dict)       # the spec as written (plain data)
    description: str = ""
    float_dtype: str = "float32"      # what float values are computed in (a model's dtype)

    # --------------------------------------------------------------------- structure
    def node(self, name: str) -> dict:
        return self.graph.nodes[name]

    def order(self) -> list[str]:
        """Every node in a stable topological order (declaration order breaks ties)."""
        index = {n: i for i, n in enumerate(self.graph.nodes)}
        return list(nx.lexicographical_topological_sort(self.graph, key=index.__getitem__))

    def layers(self) -> list[str]:
        return [n for n in self.order() if self.graph.nodes[n]["kind"] == "layer"]

    @cached_property
    def label_inputs(self) -> list[str]:
        """Inputs read only by losses (labels, targets)."""
        return label_inputs_of(self.graph, self.inputs)

    @cached_property
    def feature_inputs(self) -> list[str]:
        """Inputs the data supplies that are not labels (sampled inputs are neither)."""
        labels = set(self.label_inputs) | set(self.sampled_inputs)
        return [n for n in self.inputs if n not in labels]

    @cached_property
    def sampled_inputs(self) -> list[str]:
        """Inputs with `sample:` (a GAN's noise): the model draws them for every batch
        unless the caller passes them (nngraph/sampling.py)."""
        return [n for n, d in self.inputs.items() if d.sample]

    def with_float_dtype(self, dtype: str) -> "Network":
        """The network as a model of `dtype` computes it: every float input, value and
        parameter in `dtype`. Itself where that is already so, else a copy over the same
        spec whose graph nodes are retyped (the graph is copied, not changed).

            >>> nngraph.load("specs/lenet5.yaml").with_float_dtype("float64").inputs["image"]
            InputDef(name='image', shape=(1, 28, 28), dtype='float64')

        A float input takes the model's dtype whatever the spec declares: `dtype: float32`
        (the default) or `float64` on an input only says that it holds real numbers, as a
        model of either dtype runs every float in one width. Integer inputs (`int64`,
        `int32`: class and token indices) keep their dtype.
        """
        def retype(d):
            return dtype if d and d.startswith("float") and d != dtype else None
        if self.float_dtype == dtype and not any(
                retype(d) for _, d in self.graph.nodes(data="dtype")):
            return self
        graph = self.graph.copy()          # new attribute dicts; the values are shared
        for n, d in graph.nodes(data="dtype"):
            if retype(d):
                graph.nodes[n]["dtype"] = dtype
        inputs = {k: replace(i, dtype=retype(i.dtype) or i.dtype) for k, i in self.inputs.items()}
        return replace(self, graph=graph, inputs=inputs, float_dtype=dtype)

    # --------------------------------------------------------------------- parameters
    def param_table(self) -> dict[str, ParamInfo]:
        table = {}
        for layer in self.order():
            d = self.graph.nodes[layer]
            a = d.get("attrs") or {}
            for pname, spec in d.get("params", {}).items():
                init = a.get("bias_init") if spec.role == "bias" else (
                    a.get("weight_init") if spec.role == "weight" else None)
                mult = a.get("lr_mult", 1.0)
                mult = mult.get(pname, 1.0) if isinstance(mult, dict) else mult
                trainable = bool(a.get("trainable", True)) and mult > 0
                reg = (a.get("regularizer") or {}) if spec.regularize else {}
                table[f"{layer}.{pname}"] = ParamInfo(
                    f"{layer}.{pname}", layer, pname, spec,
                    spec.init if init is None else init, trainable, float(mult), dict(reg))
        return table

    @property
    def num_params(self) -> int:
        return sum(math.prod(p.spec.shape) for p in self.param_table().values())

    @property
    def num_trainable_params(self) -> int:
        return sum(math.prod(p.spec.shape) for p in self.param_table().values() if p.trainable)

    # --------------------------------------------------------------------- views
    def summary(self, loaded=None) -> str:
        """The layer table: name, op, output shape, parameters, FLOPs and bytes per sample;
        with `loaded` (nngraph.weights.Loaded), where each layer's parameters come from."""
        from .summary import summary
        return summary(self, loaded)

    def render(self, path: str, rankdir: str = "TB", fused: bool = False,
               backward: bool = False, backend: str = "cpu") -> str:
        """Draw the network to .svg, .png or .dot; returns the path written. `fused`: the
        groups of `backend`'s generated code ('cpu' or 'cuda')."""
        from .viz import render
        return render(self, path, rankdir=rankdir, fused=fused, backward=backward,
                      backend=backend)

    def __repr__(self) -> str:
        return (f"<Network {self.name!r}: {len(self.layers())} layers, "
                f"{self.num_params:,} parameters>")


def label_inputs_of(graph, inputs) -> list[str]:
    """Of `inputs`, those that only losses read (labels, targets), in their order; what
    Network.label_inputs gives, for a graph still being checked."""
    return [n for n in inputs if graph.out_degree(n)
            and all(graph.nodes[u]["kind"] == "loss" for u in graph.successors(n))]
