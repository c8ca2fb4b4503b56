"""Checks every op's reference rules: shape rule vs forward output, backward vs float64 finite
differences, and forward/backward vs PyTorch (a test-only oracle).

    check_gradients("conv2d", dict(filters=3, kernel=2), [(2, 5, 5)])
    check_against_torch("conv2d", dict(filters=3, kernel=2), [(2, 5, 5)],
                        lambda x, p, a: F.conv2d(x, p["W"], p["b"]))
"""
from __future__ import annotations

import numpy as np

from nngraph.ops import REGISTRY, RunContext, make_attrs

BATCH = 3


def make_case(name, attrs, in_shapes, seed=0, int_high=None, dtype=np.float64, batch=BATCH,
              inputs=None):
    """Attributes, random inputs (with the batch dimension) and random parameters."""
    op = REGISTRY[name]
    a = make_attrs(op, **dict(attrs))
    rng = np.random.default_rng(seed)
    xs = []
    for j, s in enumerate(in_shapes):
        if inputs is not None and inputs[j] is not None:
            xs.append(np.asarray(inputs[j]))
        elif j in op.int_inputs or (int_high is not None and j in int_high):
            high = int_high[j] if int_high and j in int_high else 5
            xs.append(rng.integers(0, high, (batch,) + tuple(s)).astype(np.int64))
        else:
            xs.append(rng.normal(size=(batch,) + tuple(s)).astype(dtype))
    pspecs = op.params(a, [tuple(s) for s in in_shapes])
    p = {k: rng.normal(0, 0.5, spec.shape).astype(dtype) for k, spec in pspecs.items()}
    return op, a, xs, p


def forward(op, a, xs, p, training=True, seed=1, state=None):
    ctx = RunContext(training=training, rng=np.random.default_rng(seed), state=state or {})
    return op.forward(ctx, a, xs, p), ctx


def check_gradients(name, attrs, in_shapes, seed=0, int_high=None, rtol=1e-5, atol=1e-7,
                    training=True, inputs=None, eps=1e-6):
    """Backward rule vs central finite differences of sum(forward * gy), in float64."""
    op, a, xs, p = make_case(name, attrs, in_shapes, seed, int_high, inputs=inputs)
    y, ctx = forward(op, a, xs, p, training)
    expected = (BATCH,) + tuple(op.shape(a, [tuple(s) for s in in_shapes]))
    if op.kind == "loss":
        assert np.ndim(y) == 0, f"{name}: a loss returns a scalar, got shape {np.shape(y)}"
    else:
        assert y.shape == expected, f"{name}: forward gave {y.shape}, shape rule {expected}"
    gy = np.random.default_rng(seed + 7).normal(size=np.shape(y))
    gxs, gp = op.backward(ctx, a, xs, p, y, gy)

    def loss():
        out, _ = forward(op, a, xs, p, training)
        return float(np.sum(out * gy))

    diff = op.differentiable_inputs
    for j, x in enumerate(xs):
        if x.dtype.kind != "f" or (diff is not None and j not in diff):
            continue
        _compare(f"{name} input {j}", gxs[j], _numeric(loss, x, eps), rtol, atol)
    for k, v in p.items():
        _compare(f"{name} param {k}", gp[k], _numeric(loss, v, eps), rtol, atol)
    return op, a, xs, p


def _numeric(f, x, eps):
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f()
        flat[i] = old - eps
        lo = f()
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g


def _compare(what, got, want, rtol, atol):
    assert got is not None, f"{what}: backward returned no gradient"
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: gradient shape {got.shape}, expected {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def check_against_torch(name, attrs, in_shapes, torch_fn, seed=0, int_high=None, rtol=1e-6,
                        atol=1e-8, training=True, inputs=None, param_map=None):
    """Forward and all gradients against PyTorch autograd, in float64.

    `torch_fn(xs, p, a)` gets torch tensors (inputs with requires_grad where float) and the
    params dict (torch tensors, requires_grad), and returns the output tensor.
    `param_map`, if given, converts our params to torch's layout: {name: fn(np) -> np}
    applied before, with the gradient mapped back by autograd through the same fn in torch.
    """
    import torch
    op, a, xs, p = make_case(name, attrs, in_shapes, seed, int_high, inputs=inputs)
    y, ctx = forward(op, a, xs, p, training)
    gy = np.random.default_rng(seed + 7).normal(size=np.shape(y))
    gxs, gp = op.backward(ctx, a, xs, p, y, gy)
    txs = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in xs]
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    ty = torch_fn(txs, tp, a)
    np.testing.assert_allclose(ty.detach().numpy(), y, rtol=rtol, atol=atol,
                               err_msg=f"{name}: forward differs from torch")
    (ty * torch.tensor(gy)).sum().backward()
    diff = op.differentiable_inputs
    for j, tx in enumerate(txs):
        if tx.requires_grad and (diff is None or j in diff):
            _compare(f"{name} input {j} vs torch", gxs[j], tx.grad.numpy(), rtol, atol)
    for k, tv in tp.items():
        _compare(f"{name} param {k} vs torch", gp[k], tv.grad.numpy(), rtol, atol)
