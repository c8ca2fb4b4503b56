"""fill: an array of the input's shape holding `value` everywhere (NumPy's full_like).

Targets that are the same for every sample come from it: a GAN's discriminator learns
to say 1 of real samples and 0 of generated ones, and its generator to make it say 1,

    - {op: fill, name: real, in: D_real, value: 1}
    losses:
      - {op: sigmoid_cross_entropy, in: [D_real, real]}

The input gives the shape (and the batch) only, so no gradient flows back through it.
"""
import numpy as np

from .base import Attr, Float, Fusion, OpDef, elementwise_flops, same_shape


def forward(ctx, a, xs, p):
    return np.full_like(xs[0], a.value)


def backward(ctx, a, xs, p, y, gy):
    return [None], {}


OP = OpDef("fill", "layer", Fusion.ELEMWISE, same_shape,
           attrs=(Attr("value", Float(), 0.0, "the value of every element"),),
           flops=elementwise_flops, forward=forward, backward=backward,
           takes_activation=False, differentiable_inputs=(),
           scalar=("value", "0.0"),
           doc="an array of the input's shape filled with value (full_like): constant "
               "targets such as a GAN's real and fake labels; no gradient to its input")
