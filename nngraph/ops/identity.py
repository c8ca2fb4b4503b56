"""Identity activation: y = x (a linear output, named explicitly)."""
from .base import Fusion, OpDef, same_shape


# Copies rather than aliases: a caller may write into an op's output or accumulate
# gradients in place, and that must never reach this op's input.
def forward(ctx, a, xs, p):
    return xs[0].copy()


def backward(ctx, a, xs, p, y, gy):
    return [gy.copy()], {}


OP = OpDef("identity", "activation", Fusion.ELEMWISE, same_shape,
           forward=forward, backward=backward, takes_activation=False,
           scalar=("x", "gy"),
           doc="y = x (no activation)")
