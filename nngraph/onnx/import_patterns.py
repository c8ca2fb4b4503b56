"""nngraph activations that ONNX has no single operator for, recognised in the exact
compositions export writes them as (activations.py):

    step      Greater(x, 0) -> Cast(to float)          1 where x > 0, else 0
    ramp      Clip(x, -1, 1)                           clip(x, -1, 1)
    gaussian  Exp(Div(Neg(Mul(x, x)), sigma^2))        exp(-x^2 / sigma^2)

The intermediate tensors are views of x (Value.view: 'positive', 'square', 'neg_square',
'gauss'), which no other operator may read; the last node makes the activation layer.
"""
from __future__ import annotations

import math

import numpy as np

from .import_core import Importer, Value, imports


def _activation(imp: Importer, node, source: Value, op: str, **attrs) -> None:
    name = imp.add_layer(op, [source.name], source.shape, **attrs)
    imp.set(node.output[0], Value(name, source.shape))


def _plain(imp: Importer, tensor: str) -> Value:
    imp.layer_input(tensor)                 # refuses views; reshapes a global pool's (C,)
    return imp.data(tensor)


@imports("Greater")
def greater(imp: Importer, node):
    zero = imp.const(node.input[1])
    if zero is None or np.any(zero != 0) or imp.readers.get(node.output[0]) != ["Cast"]:
        imp.refuse("a comparison other than x > 0 cast to float (nngraph's step): nngraph "
                   "has no comparison layer")
    v = _plain(imp, node.input[0])
    imp.set(node.output[0], Value(v.name, v.shape, view="positive"))


@imports("Cast")
def cast(imp: Importer, node):
    v = imp.data(node.input[0])
    to = imp.attrs().get("to")
    if v.view != "positive" or to not in (1, 11):      # FLOAT, DOUBLE
        imp.refuse("a cast of computed data: nngraph computes in one float dtype; only "
                   "Greater(x, 0) cast to float (nngraph's step) is imported")
    _activation(imp, node, v, "step")


@imports("Clip")
def clip(imp: Importer, node):
    a = imp.attrs()
    lo = imp.const(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("min")
    hi = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else a.get("max")
    if lo is None or hi is None or float(lo) != -1.0 or float(hi) != 1.0:
        imp.refuse("a clip to bounds other than [-1, 1] (nngraph's ramp)")
    _activation(imp, node, _plain(imp, node.input[0]), "ramp")


def square(imp: Importer, node) -> None:
    """Mul(x, x) read only by Neg: the start of a gaussian."""
    v = _plain(imp, node.input[0])
    imp.set(node.output[0], Value(v.name, v.shape, view="square"))


@imports("Neg")
def neg(imp: Importer, node):
    v = imp.data(node.input[0])
    if v.view != "square" or imp.readers.get(node.output[0]) != ["Div"]:
        imp.refuse("a negation other than -(x * x) / sigma^2 (nngraph's gaussian): nngraph "
                   "has no negation layer")
    imp.set(node.output[0], Value(v.name, v.shape, view="neg_square"))


def gaussian_exponent(imp: Importer, node, width) -> None:
    """-(x * x) / sigma^2 with a constant positive scalar sigma^2."""
    width = np.asarray(width)
    v = imp.data(node.input[0])
    if width.size != 1 or float(width.reshape(())) <= 0 or \
            imp.readers.get(node.output[0]) != ["Exp"]:
        imp.refuse("-(x * x) divided by other than a positive scalar read by Exp")
    sigma = math.sqrt(float(width.reshape(())))
    imp.set(node.output[0], Value(v.name, v.shape, view=f"gauss:{sigma!r}"))


@imports("Exp")
def exp(imp: Importer, node):
    v = imp.data(node.input[0])
    if not v.view.startswith("gauss:"):
        imp.refuse("an exponential other than exp(-x^2 / sigma^2) (nngraph's gaussian): "
                   "nngraph has no exp layer")
    sigma = float(v.view.split(":", 1)[1])
    _activation(imp, node, Value(v.name, v.shape), "gaussian",
                sigma=sigma if sigma != 1.0 else None)
