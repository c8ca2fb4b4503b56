"""The CPU backend's optimizer updates, matrix products and batch checks
(nngraph.kernels.cpu: optim, blas, check) against numpy, and the compiled-code cache key.
float64 to 1e-10 relative, float32 to 1e-4."""
import numpy as np
import pytest

from kernel_harness import DTYPES, close, empty, randn
from nngraph.kernels.cpu import optim
from nngraph.optimizers import Optimizer, apply_max_norm


# ---------------------------------------------------------------------------- optimizers

class _Info:
    def __init__(self, lr_mult, trainable=True, regularizer=None):
        self.lr_mult, self.trainable, self.regularizer = lr_mult, trainable, regularizer or {}


OPTIMIZERS = [{"type": "sgd", "lr": 0.1}, {"type": "sgd", "lr": 0.1, "momentum": 0.9},
              {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
              {"type": "rmsprop", "lr": 0.01}, {"type": "adagrad", "lr": 0.1},
              {"type": "adam", "lr": 0.01}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", OPTIMIZERS, ids=lambda c: "-".join(map(str, c.values())))
def test_optimizer_update(dtype, config):
    rng = np.random.default_rng(15)
    shapes, mults = {"a": (3, 4), "b": (4,), "c": (5,)}, {"a": 1.0, "b": 0.5, "c": 0.0}
    arrays = {k: randn(rng, s, dtype) for k, s in shapes.items()}
    infos = {k: _Info(mults[k]) for k in shapes}
    opt = Optimizer(config)
    state = opt.init_state(arrays, infos)
    sizes = [int(np.prod(s)) for s in shapes.values()]
    ends = np.cumsum(sizes)
    seg_start, seg_end = ends - sizes, ends.astype(np.int64)
    seg_lr = np.array([mults[k] for k in shapes], np.float64)
    flat = np.concatenate([a.reshape(-1) for a in arrays.values()])
    slots = {s: np.zeros_like(flat) for s in opt.slots}
    c = opt.config
    for t in range(3):
        grads = {k: randn(rng, s, dtype) for k, s in shapes.items()}
        g = np.concatenate([v.reshape(-1) for v in grads.values()])
        opt.update(arrays, grads, state, infos, t)
        lr = opt.lr_at(t)
        if c["type"] == "sgd":
            optim.sgd_update(flat, g, slots.get("v", empty(dtype)), seg_start, seg_end, seg_lr,
                             lr, c["momentum"], c["nesterov"])
        elif c["type"] == "rmsprop":
            optim.rmsprop_update(flat, g, slots["s"], seg_start, seg_end, seg_lr, lr, c["rho"],
                                 c["eps"])
        elif c["type"] == "adagrad":
            optim.adagrad_update(flat, g, slots["s"], seg_start, seg_end, seg_lr, lr, c["eps"])
        else:
            optim.adam_update(flat, g, slots["m"], slots["v"], seg_start, seg_end, seg_lr, lr,
                              c["beta1"], c["beta2"], c["eps"], t)
    close(flat, np.concatenate([a.reshape(-1) for a in arrays.values()]), dtype, "params")


def test_decayed_slots_flush_subnormals_to_zero():
    """A parameter whose gradient stays 0 has its momentum (and adam's/rmsprop's averages)
    decay; below the smallest normal float they become 0 instead of slow subnormals."""
    for dtype in DTYPES:
        normal = np.finfo(dtype).tiny
        one = np.array([0, 3], np.int64)
        start, end, lr = one[:1], one[1:], np.ones(1)
        p, g = np.ones(3, dtype), np.zeros(3, dtype)
        v = np.array([normal * 1.05, normal * 4, 0.5], dtype)     # 0.9 * the first is subnormal
        optim.sgd_update(p, g, v, start, end, lr, 0.1, 0.9, False)
        assert v[0] == 0 and v[1] == dtype(0.9) * dtype(normal * 4) and v[2] == dtype(0.45)
        m, s = v.copy(), np.array([normal * 1.05, 1.0, 0.5], dtype)
        optim.adam_update(p, g, m, s, start, end, lr, 0.1, 0.9, 0.9, 1e-8, 0)
        assert m[0] == 0 and s[0] == 0 and s[1] > 0
        s = np.array([normal * 1.05, 1.0, 0.5], dtype)
        optim.rmsprop_update(p, g, s, start, end, lr, 0.1, 0.9, 1e-8)
        assert s[0] == 0 and s[1] == dtype(0.9)


def test_regularize_and_max_norm():
    from nngraph.optimizers import penalty
    rng = np.random.default_rng(16)
    shapes = {"dense": (4, 3), "conv": (2, 3, 2, 2), "vec": (5,)}
    arrays = {k: randn(rng, s, np.float64) for k, s in shapes.items()}
    regs = {"dense": {"l1": 0.01, "l2": 0.02}, "conv": {"l2": 0.03}, "vec": {"l1": 0.04}}
    infos = {k: _Info(1.0, regularizer=regs[k]) for k in shapes}
    grads = {k: randn(rng, s, np.float64) for k, s in shapes.items()}
    flat = np.concatenate([a.reshape(-1) for a in arrays.values()])
    g = np.concatenate([v.reshape(-1) for v in grads.values()])
    sizes = [int(np.prod(s)) for s in shapes.values()]
    ends = np.cumsum(sizes)
    seg_start, seg_end = (ends - sizes).astype(np.int64), ends.astype(np.int64)
    l1 = np.array([regs[k].get("l1", 0.0) for k in shapes])
    l2 = np.array([regs[k].get("l2", 0.0) for k in shapes])
    total_ref = penalty(arrays, infos, grads)
    total = optim.regularize(flat, g, seg_start, seg_end, l1, l2)
    close(total, total_ref, np.float64, "penalty")
    close(g, np.concatenate([v.reshape(-1) for v in grads.values()]), np.float64, "gradient")
    for k, a in arrays.items():
        apply_max_norm(a, 0.7, a.shape)
    rows = np.array([4, 2, 1], np.int64)
    cols = np.array([3, 12, 5], np.int64)
    optim.max_norm(flat, seg_start, rows, cols, np.array([1, 0, 0], np.int64),
                   np.full(3, 0.7))
    close(flat, np.concatenate([a.reshape(-1) for a in arrays.values()]), np.float64, "max norm")


# ---------------------------------------------------------------------------------- gemm

GEMM_CASES = [  # m, n, k: the loop for tiny products, BLAS for the rest
    (1, 37, 50), (2, 5, 3), (4, 10, 64), (33, 40, 70), (70, 3, 300),
]


def _gemm_check(gemm, dtype, m, n, k, rng):
    """Every transpose flag, strided operands (row views of wider arrays, F-ordered arrays),
    alpha and beta, and beta = 0 overwriting a NaN-filled c."""
    for trans_a in (False, True):
        for trans_b in (False, True):
            a_full = randn(rng, (k, m + 3) if trans_a else (m, k + 3), dtype)
            a = a_full[:, :m] if trans_a else a_full[:, :k]          # strided rows
            b = randn(rng, (n, k) if trans_b else (k, n), dtype)
            b = np.asfortranarray(b) if k % 2 else b                  # contiguous columns
            opa, opb = (a.T if trans_a else a), (b.T if trans_b else b)
            c0 = randn(rng, (m, n + 2), dtype)
            c = c0.copy()
            gemm(0.5, a, trans_a, b, trans_b, -2.0, c[:, :n])
            want = 0.5 * opa.astype(np.float64) @ opb.astype(np.float64) - 2.0 * c0[:, :n]
            close(c[:, :n], want, dtype, f"gemm {m}x{n}x{k} {trans_a} {trans_b}")
            assert np.array_equal(c[:, n:], c0[:, n:]), "gemm wrote outside c"
            c = np.full((m, n), np.nan, dtype)
            gemm(1.0, a, trans_a, b, trans_b, 0.0, c)
            close(c, opa.astype(np.float64) @ opb, dtype, "gemm beta=0 over NaN")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", GEMM_CASES)
def test_gemm(dtype, m, n, k):
    from nngraph.kernels.cpu.blas import gemm
    _gemm_check(gemm, dtype, m, n, k, np.random.default_rng(m * n * k))


def test_gemm_refuses_bad_operands():
    from nngraph.kernels.cpu.blas import gemm
    a, b = np.ones((4, 6)), np.ones((6, 5))
    with pytest.raises(ValueError, match="do not chain"):
        gemm(1.0, a, False, b, True, 0.0, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="contiguous rows"):
        gemm(1.0, a, False, b, False, 0.0, np.zeros((5, 4)).T)
    with pytest.raises(ValueError, match="neither contiguous rows nor contiguous columns"):
        gemm(1.0, np.ones((8, 12))[::2, ::2], False, b, False, 0.0, np.zeros((4, 5)))


def test_gemm_with_the_other_blas(tmp_path):
    """The OpenBLAS path (and NNGRAPH_BLAS's choice) in a process of its own: the provider is
    bound when nngraph.kernels.cpu.blas is imported."""
    import subprocess
    import sys
    code = ("import numpy as np, test_kernels_blas as t\n"
            "from nngraph.kernels.cpu import blas\n"
            "assert blas.PROVIDER == 'openblas', blas.PROVIDER\n"
            "for dt in t.DTYPES:\n"
            "    for m, n, k in t.GEMM_CASES:\n"
            "        t._gemm_check(blas.gemm, dt, m, n, k, np.random.default_rng(1))\n"
            "        t._gemm_check(blas.gemm_serial, dt, m, n, k, np.random.default_rng(2))\n"
            "    t._gemm_packed_check(dt, packs=False)\n"
            "print('ok')\n")
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NNGRAPH_BLAS="openblas",
               PYTHONPATH=os.pathsep.join([root, os.path.join(root, "tests")]))
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr[-3000:]
    env["NNGRAPH_BLAS"] = "fast"
    run = subprocess.run([sys.executable, "-c", "import nngraph.kernels.cpu.blas"], env=env,
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0 and "NNGRAPH_BLAS='fast': choose mkl, openblas or auto" \
        in run.stderr


def test_auto_takes_openblas_only_where_mkl_runs_below_it():
    """NNGRAPH_BLAS unset: MKL, except on an AMD CPU whose OpenBLAS runs AVX-512 kernels
    (MKL runs only its AVX2 ones there); an OpenBLAS held to AVX2 by OPENBLAS_CORETYPE keeps
    MKL everywhere. Each in a process of its own (the choice is made at import)."""
    import os
    import subprocess
    import sys

    import llvmlite.binding as llvm
    from nngraph.kernels.cpu import blas_library
    if blas_library.mkl_library() is None:
        pytest.skip("no MKL to choose")
    code = ("from nngraph.kernels.cpu import blas_library as b\n"
            "print(b.PROVIDER, b._openblas_core())\n")
    amd = llvm.get_host_cpu_name().startswith("znver")
    for coretype in (None, "Haswell"):
        env = {k: v for k, v in os.environ.items()
               if k not in ("NNGRAPH_BLAS", "OPENBLAS_CORETYPE")}
        if coretype:
            env["OPENBLAS_CORETYPE"] = coretype
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=600)
        provider, core = run.stdout.split()
        want = "openblas" if amd and core in blas_library.AVX512_CORES else "mkl"
        assert provider == want, (coretype, core, run.stderr[-2000:])
        if coretype:
            assert (provider, core) == ("mkl", "haswell")


def _gemm_packed_check(dtype, packs: bool):
    """gemm_packed against float64 products: through a packed copy from more than two rows
    on (when the BLAS packs), through gemm below that and for matrices too small to pack."""
    from nngraph.kernels.cpu import packed as pk
    rng = np.random.default_rng(5)
    for k, n in [(784, 64), (32, 10)]:
        w = randn(rng, (k, n), dtype)
        packed = pk.pack(w)
        assert packed.size > 0 if packs and k * n >= pk.PACK_MIN else packed.size == 0
        for m in (1, 2, 3, 65):
            a_full = randn(rng, (m, k + 3), dtype)
            for a in (a_full[:, :k], np.ascontiguousarray(a_full[:, :k])):
                c = np.full((m, n), np.nan, dtype)
                pk.gemm_packed(a, w, packed, c)
                close(c, a.astype(np.float64) @ w, dtype, f"gemm_packed {m}x{n}x{k}")
    w = randn(rng, (784, 64), dtype)
    packed, was = pk.pack(w), w.copy()
    w[...] = 0                               # a copy: later changes do not reach it
    a, c = randn(rng, (8, 784), dtype), np.zeros((8, 64), dtype)
    pk.gemm_packed(a, w, packed, c)
    close(c, a.astype(np.float64) @ was if packs else np.zeros_like(c), dtype, "packed copy")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_packed(dtype):
    from nngraph.kernels.cpu import blas
    _gemm_packed_check(dtype, blas.PROVIDER == "mkl")


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_finite(dtype):
    from nngraph.kernels.cpu.check import all_finite
    x = np.random.default_rng(0).normal(size=(7, 13)).astype(dtype)
    x[3, 4] = np.finfo(dtype).max                        # the largest finite value is finite
    x[2, 2] = np.finfo(dtype).tiny / 4                   # and so is a subnormal
    assert all_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[6, 12] = bad
        assert not all_finite(y)
    assert all_finite(np.zeros((0, 3), dtype))


def test_int_range():
    from nngraph.kernels.cpu.check import int_range
    for dt in (np.int64, np.int32):
        x = np.array([[3, -7], [12, 0]], dt)
        assert int_range(x) == (-7, 12)
        assert int_range(x[:1, :1]) == (3, 3)


def test_gemm_serial_restores_the_thread_setting():
    """gemm_serial computes what gemm does and leaves the BLAS thread setting as it was."""
    from nngraph.kernels.cpu.blas import _threads_local, gemm_serial
    from numba import njit

    @njit
    def threads_now():
        before = _threads_local(0)
        _threads_local(before)
        return before

    rng = np.random.default_rng(3)
    a, b = randn(rng, (40, 70), np.float32), randn(rng, (70, 50), np.float32)
    c = np.zeros((40, 50), np.float32)
    before = threads_now()
    gemm_serial(1.0, a, False, b, False, 0.0, c)
    close(c, a.astype(np.float64) @ b, np.float32, "gemm_serial")
    assert threads_now() == before


def test_gemm_refuses_mixed_dtypes():
    import numba
    from nngraph.kernels.cpu.blas import gemm
    with pytest.raises(numba.core.errors.TypingError, match="one dtype"):
        gemm(1.0, np.ones((2, 3), np.float32), False, np.ones((3, 2)), False, 0.0,
             np.zeros((2, 2), np.float32))


def test_cached_kernels_are_keyed_by_all_of_the_kernel_sources():
    """numba keys a cached function by its own file; ours are also keyed by every file of
    kernels/cpu, so that a kernel compiled with an older gemm is not loaded (_cache.py)."""
    from nngraph.kernels.cpu import _cache, conv
    from nngraph.kernels.cpu.blas import gemm
    locator = conv.conv2d_forward._cache._impl.locator
    assert isinstance(locator, _cache.KernelsLocator)
    assert locator.get_source_stamp()[1] == _cache.kernels_stamp()
    assert isinstance(gemm._cache._impl.locator, _cache.KernelsLocator)

    import numba

    @numba.njit(cache=True)
    def elsewhere(x):              # not ours: numba's own locator, stamp unchanged
        return x

    assert not isinstance(elsewhere._cache._impl.locator, _cache.KernelsLocator)


def test_ir_inlining_copies_blocks_with_one_scope_per_copy():
    """numba deep-copies an IR block by block before it inlines it; _inline.py shares one
    memo between the blocks of one copy (one scope copy, not one per block), and each copy,
    of the original or of a copy, shares nothing with another."""
    import io

    import numba
    from numba.core import inline_closurecall
    from numba.core.compiler import run_frontend

    from nngraph.kernels.cpu import _inline, conv
    from nngraph.kernels.cpu._jit import Pipeline
    numba.njit(pipeline_class=Pipeline)(lambda x: x + 1)(1)     # a first compile sets it up
    copier = inline_closurecall.copy
    assert isinstance(copier, _inline._BlockCopier)
    original = run_frontend(conv._im2col.py_func)
    blocks = list(original.blocks.values())
    first = [copier.deepcopy(b) for b in blocks]
    second = [copier.deepcopy(b) for b in blocks]
    of_copy = [copier.deepcopy(b) for b in first]
    def dump(block):
        out = io.StringIO()
        block.dump(out)
        return out.getvalue()
    for copy in (first, second, of_copy):
        assert len({id(b.scope) for b in copy}) == 1
        assert [dump(b) for b in copy] == [dump(b) for b in blocks]
    scopes = [blocks[0].scope, first[0].scope, second[0].scope, of_copy[0].scope]
    assert len({id(s) for s in scopes}) == 4
    statements = [id(s) for copy in (blocks, first, second, of_copy) for b in copy
                  for s in b.body]
    assert len(set(statements)) == len(statements)


def test_our_functions_get_o1_function_passes_and_compute_the_same():
    """_passes.py runs LLVM's function passes at FUNCTION_OPT (O1) on modules that define
    nngraph's functions and at numba's own level on every other module. What the passes
    produce differs from one CPU to the next, so this checks where each level is used and
    that the kernel computes the same at every level, not the instructions it became
    (whether O1 costs speed is the benchmark's question)."""
    import types

    import numba
    from llvmlite import binding as llvm
    from numba.core import codegen

    from nngraph.kernels.cpu import _passes, pool
    assert codegen.CPUCodeLibrary._nngraph_passes

    def module(name):
        return llvm.parse_assembly(f'define void @"{name}"() {{\n  ret void\n}}')
    assert _passes._ours(module("_ZN7nngraph7kernels3cpu4conv14conv2d_forwardE"))
    assert not _passes._ours(module("_ZN5numba2np8arrayobj4implE"))

    levels = []                                     # (opt level, function names) per use
    manager = codegen.CPUCodegen._function_pass_manager

    def recording(self, opt=None, **kwargs):
        levels.append(opt)
        return manager(self, opt=opt, **kwargs) if opt is not None else manager(self, **kwargs)

    sig = (numba.float32[:, :, :, ::1], numba.int64[:, :, :, ::1], numba.float32[:, :, :, ::1])
    kernel = pool.maxpool2d_backward.py_func
    rng = np.random.default_rng(3)
    gy = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    arg = rng.integers(-1, 16, size=gy.shape).astype(np.int64)
    want = np.zeros((2, 3, 4, 4), np.float32)
    for (n, c, i, j), a in np.ndenumerate(arg):
        if a >= 0:
            want[n, c].flat[a] += gy[n, c, i, j]

    def run(level, module_name):
        """A fresh copy of maxpool2d_backward in a module named `module_name`, compiled
        with our function passes at `level`: the opt levels its compile used, and gx."""
        copy = types.FunctionType(kernel.__code__, {**kernel.__globals__,
                                                    "__name__": module_name})
        levels.clear()
        _passes.FUNCTION_OPT = level
        codegen.CPUCodegen._function_pass_manager = recording
        try:
            fn = numba.njit(sig, fastmath=True, error_model="numpy")(copy)
        finally:
            _passes.FUNCTION_OPT = 1
            codegen.CPUCodegen._function_pass_manager = manager
        gx = np.full((2, 3, 4, 4), np.nan, np.float32)
        fn(gy, arg, gx)
        return set(levels), gx

    for level in (0, 1, 3):
        used, gx = run(level, "nngraph_test_passes")
        assert level in used                        # (numba's helpers: None)
        np.testing.assert_allclose(gx, want, rtol=1e-6, atol=1e-6)
    used, gx = run(0, "someone_else")               # not ours: numba's level, whatever ours
    assert 0 not in used
    np.testing.assert_allclose(gx, want, rtol=1e-6, atol=1e-6)


def test_typing_shortcuts_keep_numba_s_answers(monkeypatch):
    """_typing.py: the array-operator template answers None for scalars without its ufunc
    search and still types arrays (in-place operators on them too); numba's error text is
    marked up as before, without wrapping sys.stdout on the way."""
    import operator
    import sys

    import numba
    from numba.core import errors, types
    from numba.core.typing import npydecl

    from nngraph.kernels.cpu import _typing  # noqa: F401 (installed by _jit)
    assert npydecl.NumpyRulesArrayOperator._nngraph_scalars
    ctx = numba.core.registry.cpu_target.typing_context
    add = next(c for c in npydecl.NumpyRulesArrayOperator.__subclasses__()
               if getattr(c, "key", None) is operator.add)(ctx)
    arrays = add.generic((types.float64[::1], types.float64[::1]), {})
    assert arrays is not None and arrays.return_type.ndim == 1
    def no_search(*args):
        raise AssertionError("searched a ufunc loop for scalars")
    with monkeypatch.context() as m:
        m.setattr(npydecl, "ufunc_find_matching_loop", no_search)
        assert add.generic((types.int64, types.float32), {}) is None
        assert add.generic((types.float64, types.Optional(types.float64)), {}) is None

    @numba.njit
    def mixed(a, b, x):
        a += b
        return a * x + 1, x * 2 - 1

    out, scalar = mixed(np.ones(3), np.arange(3.0), 2.0)
    assert out.tolist() == [3.0, 5.0, 7.0] and scalar == 3.0

    stdout = sys.stdout
    text = errors.termcolor().errmsg("no type for this")
    assert sys.stdout is stdout and "no type for this" in text

    @numba.njit
    def wrong(a):
        return a + "text"
    with pytest.raises(errors.TypingError, match="No implementation of function"):
        wrong(np.ones(2))
