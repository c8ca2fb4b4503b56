"""Which function writes which nngraph op as ONNX nodes.

A layer converter takes the Builder and a Layer and must produce the tensor `layer.out`; an
activation converter, which also serves the `activation:` attribute of any layer, takes the
Builder, the op's name, the node's name, the activation's attributes and its input and
output tensor names. Converters
register themselves by op name, as ops do in nngraph/ops: adding an op's ONNX form means
adding one function to the file of its family, nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

CONVERTERS: dict[str, Callable] = {}
ACTIVATIONS: dict[str, Callable] = {}


@dataclass
class Layer:
    """One spec layer as its converter sees it (shapes without the batch dimension)."""
    name: str                 # the spec's layer name: the name of the ONNX node that computes it
    op: str
    attrs: dict
    inputs: list              # ONNX tensor names of its inputs, in order
    in_shapes: list
    shape: tuple              # its output's shape per sample
    out: str                  # the tensor name the converter must produce
    params: dict = field(default_factory=dict)    # parameter name -> array ('W' -> ...)
    state: dict = field(default_factory=dict)     # batchnorm's running statistics
    keys: dict = field(default_factory=dict)      # parameter name -> its key where the layer
                                                  # uses another's (`shares:`): 'D_real/h1.W'

    def param(self, b, pname: str) -> str:
        """The initializer of parameter `pname`, named '<layer>.<pname>' as in model.params."""
        key = self.keys.get(pname, f"{self.name}.{pname}")
        if key in b.tensors:     # a shared parameter, written once ('.' is in no layer name)
            return key
        return b.init(key, self.params[pname])


def converts(*ops: str):
    """Register a layer converter for `ops`."""
    def register(fn):
        for op in ops:
            CONVERTERS[op] = fn
        return fn
    return register


def activation(*ops: str):
    """Register an activation converter for `ops` (as a layer and as `activation:`)."""
    def register(fn):
        for op in ops:
            ACTIVATIONS[op] = fn
        return fn
    return register
