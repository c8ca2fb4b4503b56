"""The KL term of a variational autoencoder's loss: the divergence of the encoder's
Gaussian N(mean, diag(exp(log_var))) from the prior N(0, I),

    KL = -1/2 sum_j (1 + log_var_j - mean_j^2 - exp(log_var_j)),

summed over each sample's code, then mean or sum over the batch (`reduction`), as the
other losses. Inputs [mean, log_var] of one shape. The gradients are mean for the mean and
(exp(log_var) - 1) / 2 for log_var: the prior pulls codes towards 0 and variances towards 1.
"""
import numpy as np

from . import _losses
from .base import Fusion, OpDef, ShapeError


def shape(a, shapes):
    m, v = (tuple(s) for s in shapes)
    if m != v:
        raise ShapeError(f"mean of shape {list(m)} and log_var of shape {list(v)} differ: "
                         "gaussian_kl needs [mean, log_var] of the same shape")
    return ()


def forward(ctx, a, xs, p):
    mean, log_var = xs
    half = mean.dtype.type(0.5)
    return _losses.reduce(a, -half * (1 + log_var - mean * mean - np.exp(log_var)))


def backward(ctx, a, xs, p, y, gy):
    mean, log_var = xs
    g_var = (np.exp(log_var) - 1) * log_var.dtype.type(0.5)
    return [_losses.input_grad(a, gy, mean), _losses.input_grad(a, gy, g_var)], {}


OP = OpDef("gaussian_kl", "loss", Fusion.REDUCTION, shape, inputs=(2, 2),
           flops=_losses.per_element_flops(6), forward=forward, backward=backward,
           doc="KL(N(mean, exp(log_var)) || N(0, I)) = -1/2 sum_j (1 + log_var_j - mean_j^2 "
               "- exp(log_var_j)) per sample (in: [mean, log_var])")
