"""Batch normalization per channel, as nngraph/ops/batchnorm.py.

Every array is viewed as (N, C, S): the caller reshapes (N, C) to (N, C, 1), (N, C, L) to
(N, C, L) and (N, C, H, W) to (N, C, H*W). Statistics run over N and S.

    x_hat = (x - mean) * inv_std,  inv_std = 1 / sqrt(var + eps),  y = gamma * x_hat + beta

Training uses the batch's mean and biased variance and moves the running statistics
(Keras' convention): running = momentum * running + (1 - momentum) * batch, the running
variance taking the unbiased variance var * count / (count - 1), count = N*S. Evaluation uses
the running statistics. A layer without beta passes a size-0 `beta` (and `gbeta`).

Saved for backward: x_hat (N, C, S) and inv_std (C,). Channel sums are accumulated in float64
(the reference's numpy sums are pairwise, so both are accurate; float32 agrees to ~1e-6).
"""
import numpy as np

from ._jit import kernel


@kernel
def batchnorm_forward_train(x, gamma, beta, y, x_hat, inv_std, running_mean, running_var,
                            momentum, eps):
    """Batch statistics, normalize, affine map; updates running_mean/var in place."""
    n_batch, channels, spatial = x.shape
    count = n_batch * spatial
    dt = x.dtype.type
    for c in range(channels):
        total = 0.0
        for n in range(n_batch):
            total += x[n, c].sum()
        mean = dt(total / count)
        sq = 0.0
        for n in range(n_batch):
            row = x[n, c]
            acc = dt(0)
            for s in range(spatial):
                d = row[s] - mean
                acc += d * d
            sq += acc
        var = dt(sq / count)
        unbiased = var * dt(count / max(count - 1, 1))
        running_mean[c] = dt(momentum) * running_mean[c] + dt(1 - momentum) * mean
        running_var[c] = dt(momentum) * running_var[c] + dt(1 - momentum) * unbiased
        istd = dt(1) / np.sqrt(var + dt(eps))
        inv_std[c] = istd
        _normalize_channel(x, y, x_hat, c, mean, istd, gamma[c],
                           beta[c] if beta.size else dt(0))


@kernel
def _normalize_channel(x, y, x_hat, c, mean, istd, g, b):
    for n in range(x.shape[0]):
        src, xh, out = x[n, c], x_hat[n, c], y[n, c]
        for s in range(x.shape[2]):
            v = (src[s] - mean) * istd
            xh[s] = v
            out[s] = v * g + b


@kernel
def batchnorm_forward_eval(x, gamma, beta, y, x_hat, inv_std, running_mean, running_var, eps):
    """Normalize with the running statistics. x_hat may have size 0 (prediction: not kept)."""
    dt = x.dtype.type
    keep = x_hat.size > 0
    for c in range(x.shape[1]):
        mean = running_mean[c]
        istd = dt(1) / np.sqrt(running_var[c] + dt(eps))
        inv_std[c] = istd
        g, b = gamma[c], beta[c] if beta.size else dt(0)
        for n in range(x.shape[0]):
            src, out = x[n, c], y[n, c]
            for s in range(x.shape[2]):
                v = (src[s] - mean) * istd
                out[s] = v * g + b
                if keep:
                    x_hat[n, c, s] = v


@kernel
def batchnorm_backward(gy, x_hat, gamma, inv_std, gx, ggamma, gbeta, training):
    """gx, ggamma, gbeta from gy. training=False: the statistics were constants (eval mode),
    so gx = gy * gamma * inv_std. gx may have size 0 (not needed), gbeta too (no beta)."""
    n_batch, channels, spatial = gy.shape
    count = n_batch * spatial
    dt = gy.dtype.type
    for c in range(channels):
        sum_g = 0.0
        sum_gx = 0.0
        for n in range(n_batch):
            g, xh = gy[n, c], x_hat[n, c]
            acc_g = dt(0)
            acc_gx = dt(0)
            for s in range(spatial):
                acc_g += g[s]
                acc_gx += g[s] * xh[s]
            sum_g += acc_g
            sum_gx += acc_gx
        ggamma[c] = sum_gx
        if gbeta.size:
            gbeta[c] = sum_g
        if gx.size == 0:
            continue
        scale = gamma[c] * inv_std[c]
        g_mean = dt(sum_g / count) if training else dt(0)
        g_proj = dt(sum_gx / count) if training else dt(0)
        for n in range(n_batch):
            g, xh, out = gy[n, c], x_hat[n, c], gx[n, c]
            for s in range(spatial):
                out[s] = scale * (g[s] - g_mean - xh[s] * g_proj)
