"""Scaled exponential linear unit (Klambauer et al., 2017), as ONNX's Selu and Keras' selu:
y = gamma·x if x > 0 else gamma·alpha·(exp(x) - 1).

The defaults are the constants that keep activations self-normalising (mean 0, variance 1)
through a stack of dense layers initialised with variance 1/fan_in. The attributes keep
ONNX's names, alpha and gamma (PyTorch and Keras call gamma `scale`), so that an import is
attribute for attribute. For x <= 0, dy/dx = gamma·alpha·exp(x) = y + gamma·alpha, so backward
reads the output only, as elu's does: a fused kernel need not keep the pre-activation.
"""
import numpy as np

from .base import Attr, Float, Fusion, OpDef, elementwise_flops, same_shape

ALPHA = 1.6732632423543772848170429916717
GAMMA = 1.0507009873554804934193349852946


def forward(ctx, a, xs, p):
    x = xs[0]
    # expm1 of min(x, 0): the branch np.where discards must not overflow for large x
    return np.where(x > 0, a.gamma * x, a.gamma * a.alpha * np.expm1(np.minimum(x, 0)))


def backward(ctx, a, xs, p, y, gy):
    return [np.where(xs[0] > 0, gy * a.gamma, gy * (y + a.gamma * a.alpha))], {}


OP = OpDef("selu", "activation", Fusion.ELEMWISE, same_shape,
           attrs=(Attr("alpha", Float(0.0), ALPHA,
                       "the output approaches -gamma·alpha as x -> -inf"),
                  # gamma > 0 keeps y > 0 exactly where x > 0, which backward's branch reads
                  Attr("gamma", Float(0.0, exclusive_min=True), GAMMA,
                       "the scale of both branches (PyTorch's and Keras' scale)")),
           flops=elementwise_flops, forward=forward, backward=backward, takes_activation=False,
           scalar=("gamma * x if x > 0 else gamma * alpha * math.expm1(x)",
                   "gy * gamma if y > 0 else gy * (y + gamma * alpha)"),
           doc="gamma * (x if x > 0 else alpha * (exp(x) - 1))")
