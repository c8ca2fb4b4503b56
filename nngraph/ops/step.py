"""Heaviside step, the perceptron's activation: y = 1 if x > 0 else 0.

The true derivative is zero almost everywhere, which would stop all learning, so backward is
straight-through (dy/dx taken as 1). With squared error, SGD then performs Rosenblatt's delta
rule w += lr (t - y) x.
"""
from .base import Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    return (xs[0] > 0).astype(xs[0].dtype)


def backward(ctx, a, xs, p, y, gy):
    return [gy.copy()], {}


OP = OpDef("step", "activation", Fusion.ELEMWISE, same_shape, flops=elementwise_flops,
           forward=forward, backward=backward, takes_activation=False,
           scalar=("1.0 if x > 0 else 0.0", "gy"),
           doc="1 if x > 0 else 0 (perceptron); backward is straight-through (identity)")
