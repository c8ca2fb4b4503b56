"""Helpers of the kernel tests (test_kernels_cpu.py, test_kernels_conv.py): the ops' numpy
reference rules as the oracle, and the tolerances (float64 1e-10 relative, float32 1e-4);
test_kernels_blas.py and test_kernels_views.py use them too."""
import numpy as np

from nngraph.ops import REGISTRY, RunContext, make_attrs

TOL = {np.float64: 1e-10, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]


def close(got, want, dtype, what=""):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(np.abs(want).max(initial=0.0), 1e-30)
    err = np.abs(got - want).max(initial=0.0) / scale
    assert err <= TOL[dtype], f"{what}: relative error {err:.3g}"


def reference(name, attrs, xs, p, training=True, state=None):
    """The op's forward and backward (with a random gy); returns y, gy, gxs, gp, ctx."""
    op = REGISTRY[name]
    a = make_attrs(op, **attrs)
    ctx = RunContext(training=training, state=state if state is not None else {})
    y = op.forward(ctx, a, xs, p)
    gy = np.random.default_rng(9).normal(size=np.shape(y)).astype(xs[0].dtype
                                                                  if xs[0].dtype.kind == "f"
                                                                  else p["W"].dtype)
    gxs, gp = op.backward(ctx, a, xs, p, y, gy)
    return a, y, gy, gxs, gp, ctx


def randn(rng, shape, dtype):
    return rng.normal(size=shape).astype(dtype)


def empty(dtype, ndim=1):
    return np.zeros((0,) * ndim, dtype)
