"""stop_gradient: y = x forward, and no gradient flows back to x.

A GAN's discriminator step reads the generator's samples through it, so that the
discriminator's loss trains the discriminator alone; a target computed by the network
(a bootstrapped value) is held fixed the same way. The autodiff pass never sends a
gradient through input 0 (`differentiable_inputs=()`): the layers before it get none from
losses reached through it only, and nothing of their backward is built for them.
"""
from .base import Fusion, OpDef, same_shape


# Copies rather than aliases in the numpy rule, as identity does: a caller may write into
# an op's output, and that must never reach this op's input.
def forward(ctx, a, xs, p):
    return xs[0].copy()


def backward(ctx, a, xs, p, y, gy):
    return [None], {}


OP = OpDef("stop_gradient", "layer", Fusion.INJECTIVE, same_shape,
           forward=forward, backward=backward, takes_activation=False,
           differentiable_inputs=(),
           doc="y = x, and no gradient flows back through it to x: the layers before it "
               "are not trained by the losses that read it (a GAN's discriminator step "
               "reads the generator's samples through it).")
