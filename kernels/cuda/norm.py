"""Batch normalization per channel on the GPU, as nngraph/ops/batchnorm.py, with the
signatures of kernels/cpu/norm.py (so that drivers read the same on both backends).

Every array is viewed as (N, C, S) here: (N, C) as (N, C, 1), (N, C, L) as it is and
(N, C, H, W) as (N, C, H*W). Statistics run over N and S.

    x_hat = (x - mean) * inv_std,  inv_std = 1 / sqrt(var + eps),  y = gamma * x_hat + beta

Training: one block per channel. Its threads fold strided shares of the channel's N*S
values and the block's shared-memory tree (reduce._tree) sums the shares: first the sum
(the mean), then the squared deviations from it (the biased variance, as numpy's var
computes it, not E[x^2] - mean^2, which cancels). Thread 0 moves the running statistics
(Keras' convention, running = momentum * running + (1 - momentum) * batch, the variance
taking the unbiased var * count / (count - 1)) and keeps inv_std; then every thread
normalizes its share, keeping x_hat for the backward. Evaluation: a thread per value, with
the running statistics. The backward: one block per channel sums gy and gy * x_hat (the
gradients of beta and gamma) by the same tree, then each thread writes its share of

    gx = gamma * inv_std * (gy - mean(gy) - x_hat * mean(gy * x_hat))

Sums are taken in the arrays' dtype (the tree adds pairs, as numpy's pairwise sums do, so
float32 stays close to the reference); momentum and eps come as Python floats and are
rounded to the dtype where they meet it, as numpy rounds the reference's. A layer without
beta passes None for beta (and gbeta); gx None where nothing wants it.
"""
from __future__ import annotations

import math

from numba import cuda

from .launch import THREADS, grid, per_dtype
from .reduce import _tree, _width


def _ncs(a):
    return a.reshape(a.shape[0], a.shape[1], -1)


def _train_kernel(dtype):
    @cuda.jit
    def batchnorm_train(x, gamma, beta, has_beta, y, x_hat, inv_std, running_mean,
                        running_var, momentum, eps):
        """Channel c = blockIdx.x: batch statistics, running statistics, x_hat and y."""
        shared = cuda.shared.array(THREADS, dtype)
        c, tid, width = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        spatial = x.shape[2]
        count = x.shape[0] * spatial
        acc = dtype(0)
        for k in range(tid, count, width):
            acc += x[k // spatial, c, k % spatial]
        shared[tid] = acc
        _tree(shared, tid, False)
        mean = dtype(shared[0] / count)
        cuda.syncthreads()                  # every thread has read the sum
        acc = dtype(0)
        for k in range(tid, count, width):
            d = x[k // spatial, c, k % spatial] - mean
            acc += d * d
        shared[tid] = acc
        _tree(shared, tid, False)
        var = dtype(shared[0] / count)
        istd = dtype(1) / math.sqrt(var + dtype(eps))
        if tid == 0:
            unbiased = var * dtype(count / (count - 1 if count > 1 else 1))
            running_mean[c] = dtype(momentum) * running_mean[c] + dtype(1 - momentum) * mean
            running_var[c] = dtype(momentum) * running_var[c] + dtype(1 - momentum) * unbiased
            inv_std[c] = istd
        g = gamma[c]
        b = beta[c] if has_beta else dtype(0)
        for k in range(tid, count, width):
            n, s = k // spatial, k % spatial
            v = (x[n, c, s] - mean) * istd
            x_hat[n, c, s] = v
            y[n, c, s] = v * g + b
    return batchnorm_train


def _eval_kernel(dtype):
    @cuda.jit
    def batchnorm_eval(x, gamma, beta, has_beta, y, running_mean, running_var, eps, spatial):
        """Value i of the flat (N*C*S) x and y, normalized with the running statistics."""
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            c = (i // spatial) % gamma.size
            istd = dtype(1) / math.sqrt(running_var[c] + dtype(eps))
            v = (x[i] - running_mean[c]) * istd
            y[i] = v * gamma[c] + (beta[c] if has_beta else dtype(0))
    return batchnorm_eval


def _backward_kernel(dtype):
    @cuda.jit
    def batchnorm_grad(gy, x_hat, gamma, inv_std, gx, has_gx, ggamma, has_gamma, gbeta,
                       has_beta, training):
        """Channel c = blockIdx.x: the gradients of gamma and beta, then gx."""
        sum_g = cuda.shared.array(THREADS, dtype)
        sum_gx = cuda.shared.array(THREADS, dtype)
        c, tid, width = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        spatial = gy.shape[2]
        count = gy.shape[0] * spatial
        acc_g = dtype(0)
        acc_gx = dtype(0)
        for k in range(tid, count, width):
            n, s = k // spatial, k % spatial
            g = gy[n, c, s]
            acc_g += g
            acc_gx += g * x_hat[n, c, s]
        sum_g[tid] = acc_g
        sum_gx[tid] = acc_gx
        _tree(sum_g, tid, False)
        _tree(sum_gx, tid, False)
        if tid == 0:
            if has_gamma:
                ggamma[c] = sum_gx[0]
            if has_beta:
                gbeta[c] = sum_g[0]
        if has_gx:
            scale = gamma[c] * inv_std[c]
            g_mean = dtype(sum_g[0] / count) if training else dtype(0)
            g_proj = dtype(sum_gx[0] / count) if training else dtype(0)
            for k in range(tid, count, width):
                n, s = k // spatial, k % spatial
                gx[n, c, s] = scale * (gy[n, c, s] - g_mean - x_hat[n, c, s] * g_proj)
    return batchnorm_grad


train_kernel = per_dtype(_train_kernel)
eval_kernel = per_dtype(_eval_kernel)
backward_kernel = per_dtype(_backward_kernel)


def batchnorm_forward_train(x, gamma, beta, y, x_hat, inv_std, running_mean, running_var,
                            momentum, eps, stream=0) -> None:
    """Batch statistics, normalize, affine map; moves running_mean/var in place, keeps
    x_hat (shaped as x) and inv_std (C,) for the backward. beta None: no beta."""
    x, y, x_hat = _ncs(x), _ncs(y), _ncs(x_hat)
    kernel = train_kernel(x.dtype)
    kernel[x.shape[1], _width(x.shape[0] * x.shape[2]), stream](
        x, gamma, gamma if beta is None else beta, beta is not None, y, x_hat, inv_std,
        running_mean, running_var, float(momentum), float(eps))


def batchnorm_forward_eval(x, gamma, beta, y, x_hat, inv_std, running_mean, running_var,
                           eps, stream=0) -> None:
    """Normalize with the running statistics. x_hat and inv_std are not kept (None: the
    backward of a training run uses its own); beta None: no beta."""
    kernel = eval_kernel(x.dtype)
    kernel[grid(x.size) + (stream,)](
        x.reshape(x.size), gamma, gamma if beta is None else beta, beta is not None,
        y.reshape(y.size), running_mean, running_var, float(eps),
        x.size // max(x.shape[0] * x.shape[1], 1))


def batchnorm_backward(gy, x_hat, gamma, inv_std, gx, ggamma, gbeta, training,
                       stream=0) -> None:
    """gx, ggamma, gbeta from gy. training=False: the statistics were constants (eval mode),
    so gx = gy * gamma * inv_std. gx, ggamma, gbeta None where not wanted."""
    gy, x_hat = _ncs(gy), _ncs(x_hat)
    kernel = backward_kernel(gy.dtype)
    kernel[gy.shape[1], _width(gy.shape[0] * gy.shape[2]), stream](
        gy, x_hat, gamma, inv_std, gy if gx is None else _ncs(gx), gx is not None,
        gamma if ggamma is None else ggamma, ggamma is not None,
        gamma if gbeta is None else gbeta, gbeta is not None, bool(training))
