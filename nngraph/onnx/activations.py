"""ONNX forms of nngraph's activations, as layers (`{op: relu}`) and as any layer's
`activation:` attribute. Each is an ONNX op with the same definition where one exists, else
an exact composition of ONNX ops:

    step      y = 1 if x > 0 else 0       Greater(x, 0), Cast (NaN > 0 is false: 0, as nngraph)
    ramp      y = clip(x, -1, 1)          Clip(x, -1, 1)
    gaussian  y = exp(-x^2 / sigma^2)     Exp(Neg(Div(Mul(x, x), sigma^2)))

`node` is the name of the node that writes `out` ('c1:relu' for an attribute, the layer's
name for an activation layer); helper nodes and tensors are '<node>:<what>'.
"""
from __future__ import annotations

from .registry import ACTIVATIONS, CONVERTERS, Layer, activation

_SIMPLE = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softplus": "Softplus",
           "identity": "Identity", "softsign": "Softsign"}


@activation(*_SIMPLE)
def simple(b, op, node, attrs, x, out):
    b.node(_SIMPLE[op], [x], out, node)


@activation("elu", "leaky_relu")
def with_alpha(b, op, node, attrs, x, out):
    """ONNX's Elu and LeakyRelu pick x at x = 0 where nngraph picks the other branch; both
    give 0 there."""
    b.node("Elu" if op == "elu" else "LeakyRelu", [x], out, node, alpha=float(attrs.alpha))


@activation("selu")
def selu(b, op, node, attrs, x, out):
    """ONNX's Selu is nngraph's definition, with the same attribute names."""
    b.node("Selu", [x], out, node, alpha=float(attrs.alpha), gamma=float(attrs.gamma))


@activation("softmax", "log_softmax")
def softmax(b, op, node, attrs, x, out):
    """Over the last axis, as nngraph's (ONNX's axis semantics since opset 13)."""
    b.node("Softmax" if op == "softmax" else "LogSoftmax", [x], out, node, axis=-1)


@activation("step")
def step(b, op, node, attrs, x, out):
    zero = b.scalar(f"{node}:zero", 0.0)
    b.node("Greater", [x, zero], f"{node}:positive", f"{node}:greater")
    b.node("Cast", [f"{node}:positive"], out, node, to=b.elem_type)


@activation("ramp")
def ramp(b, op, node, attrs, x, out):
    lo, hi = b.scalar(f"{node}:low", -1.0), b.scalar(f"{node}:high", 1.0)
    b.node("Clip", [x, lo, hi], out, node)


@activation("gaussian")
def gaussian(b, op, node, attrs, x, out):
    """-(x * x) / (sigma * sigma), in nngraph's order of operations."""
    width = b.scalar(f"{node}:sigma_squared", attrs.sigma * attrs.sigma)
    b.node("Mul", [x, x], f"{node}:square", f"{node}:mul")
    b.node("Neg", [f"{node}:square"], f"{node}:negated", f"{node}:neg")
    b.node("Div", [f"{node}:negated", width], f"{node}:exponent", f"{node}:div")
    b.node("Exp", [f"{node}:exponent"], out, node)


def _as_layer(op):
    def convert(b, L: Layer):
        ACTIVATIONS[op](b, op, L.name, L.attrs, L.inputs[0], L.out)
    convert.__doc__ = f"The activation {op} used as a layer of its own."
    return convert


for _op in list(ACTIVATIONS):
    CONVERTERS[_op] = _as_layer(_op)
