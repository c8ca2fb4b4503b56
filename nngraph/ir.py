"""The lowered program's vocabulary: what the nodes of a Program's graph are, and what the
buffers that generated code names hold.

A Program's graph (program.py) is an IRGraph, a networkx DiGraph whose nodes are keyed by

    'c1', 'c1:relu'   a forward node (str): a network input, a layer's op, a layer's
                      activation, a loss; the key is its name in the spec
    Grad('c1')        the gradient of forward node c1's output: the sum of what its
                      consumers send back, or the seed of a root (a loss's weight)
    Vjp('c1')         c1's op's backward rule applied to Grad('c1'): the gradients of c1's
                      inputs and parameters

and hold one record each, `graph.node(key)`: a Node, a GradNode or a VjpNode. What a key is
never hides in its spelling: str(Vjp('c1')) is 'vjp:c1' for people (NNGRAPH_DEBUG=passes,
pictures, docstrings of generated kernels), and code asks isinstance(key, Vjp).

A Ref names one buffer of generated code by what it holds (its Space) and of what (its
key); Ref.name is the identifier the code uses, made in one place (`ident`). The backend
plans the arena-held spaces (values, gradients, scratch) and binds the others (parameters,
their gradients, packed weights, layer state, the random stream's words) itself.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

import networkx as nx


@dataclass(frozen=True)
class Grad:
    of: str

    def __str__(self) -> str:
        return f"grad:{self.of}"


@dataclass(frozen=True)
class Vjp:
    of: str

    def __str__(self) -> str:
        return f"vjp:{self.of}"


def forward_of(key) -> str:
    """The forward node a key belongs to: itself, or the node of a Grad or Vjp."""
    return key.of if isinstance(key, (Grad, Vjp)) else key


@dataclass
class Node:
    """A forward node: a network input (`op` None), a layer's op or activation, a loss."""
    kind: str                   # input | layer | loss
    op: Any                     # ops.base.Op, None for an input
    attrs: Any                  # the op's attributes (a loss's include its weight)
    inputs: list                # forward nodes it reads, in order
    params: dict                # parameter name -> 'layer.param' ('W' -> 'c1.W')
    state: dict                 # state name -> 'layer.name' (batchnorm's running statistics)
    shape: tuple                # per sample
    dtype: str | None
    layer: str                  # the spec layer that owns its parameters and state
    cluster: tuple = ()         # the blocks it was expanded from (pictures group by them)


@dataclass
class GradNode:
    """The gradient of a forward node's output."""
    shape: tuple
    seed: Any = None            # a root's d(total)/d(root): a loss's weight or 'ones'
    kind: ClassVar[str] = "grad"


@dataclass
class VjpNode:
    """A forward node's backward rule: which of its inputs and parameters get gradients."""
    inputs: tuple = ()          # indices of the inputs that get a gradient
    params: dict = field(default_factory=dict)   # parameter name -> key, trainable ones
    kind: ClassVar[str] = "vjp"


class IRGraph(nx.DiGraph):
    """A Program's graph: node(key) is the key's record."""

    def add(self, key, record) -> None:
        self.add_node(key, ir=record)

    def node(self, key) -> Node | GradNode | VjpNode:
        return self.nodes[key]["ir"]


class Space(enum.Enum):
    """What a buffer holds; the value is the prefix of its name in generated code."""
    VALUE = "v"             # a forward node's output (a network input's is the batch's array)
    GRAD = "g"              # the gradient of a forward node's output
    SCRATCH = "s"           # a kernel's working space (im2col columns, arg-max indices)
    PARAM = "p"
    PARAM_GRAD = "gp"
    PACKED = "q"            # a frozen module's packed copy of a weight matrix
    STATE = "st"            # a layer's persistent state
    STREAM = "rng"          # the words of a run's random stream (random_stream.py)


ARENA = (Space.VALUE, Space.GRAD, Space.SCRATCH)
"""The spaces whose buffers the memory plan places in a run's arena."""


@dataclass(frozen=True)
class Ref:
    space: Space
    key: str
    name: str = field(init=False, repr=False, compare=False)
    """The buffer's Python name, 'v_dense_1' (made once: runs read it on every step)."""

    def __post_init__(self):
        object.__setattr__(self, "name", f"{self.space.value}_{ident(self.key)}")

    def __str__(self) -> str:
        return self.name


def ident(name: str) -> str:
    """A Python identifier for a name ('res_1/conv:relu' -> 'res_1_conv_relu'). ASCII
    only: str.isalnum() is true of characters Python refuses in names ('²'). Spec loading
    refuses two names with the same identifier (spec/build.py)."""
    out = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in name)
    return out if out[:1].isalpha() or out[:1] == "_" else "n" + out


STREAM_WORDS = Ref(Space.STREAM, "words")
"""The words of a run's random stream: model seed and step, and the first sample's index."""
