"""Time the hand-written CPU kernels against the numpy reference rules and PyTorch (dev script).

    python tools/kernel_timing.py              # speed table, float32, 2 BLAS/torch threads
    python tools/kernel_timing.py --threads 1  # the same, single-threaded everywhere
    python tools/kernel_timing.py --compile    # cold compile time of every kernel

Shapes: a LeNet-5 batch of 64 (conv 1->6 k5 on 28x28, maxpool 2, conv 6->16 k5, maxpool 2,
softmax cross-entropy over 10 classes, SGD with momentum over its 61,706 parameters) and an
LSTM with T=32, H=128, N=32 and 32 input features. Each cell is the best of several runs,
in milliseconds; "fwd+bwd" rows run the forward and the backward once each.

On a shared 2-core machine, multithreaded OpenBLAS collapses when another process holds a
core (a 6x25 GEMM over K=36864 took ~1 s instead of 1 ms): compare numbers taken at low load,
or use --threads 1.

--compile runs in a fresh NUMBA_CACHE_DIR so that nothing is cached. It reports each kernel's
own compile time (incremental: helpers shared with an earlier kernel are already compiled)
and the time a new njit function takes to compile a call of it, which is what generated code
pays: numba links the kernel's bitcode into every caller and optimizes it again.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

F32 = np.float32


def best_ms(fn, repeat=7, number=None):
    fn()
    if number is None:
        t = time.perf_counter()
        fn()
        number = max(1, int(0.05 / max(time.perf_counter() - t, 1e-6)))
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best * 1e3


# ------------------------------------------------------------------------ the cases

def _reference(name, attrs, xs, p, gy=None):
    from nngraph.ops import REGISTRY, RunContext, make_attrs
    op, a = REGISTRY[name], make_attrs(name, **attrs)

    def fwd():
        return op.forward(RunContext(), a, xs, p)

    def both():
        ctx = RunContext()
        y = op.forward(ctx, a, xs, p)
        op.backward(ctx, a, xs, p, y, gy if gy is not None else np.ones_like(y))
    return fwd, both


def conv_case(n, c, h, f, k):
    import torch
    from nngraph.kernels.cpu import conv
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(n, c, h, h)).astype(F32), rng.normal(size=(f, c, k, k)).astype(F32)
    ho = h - k + 1
    y, gy = np.empty((n, f, ho, ho), F32), rng.normal(size=(n, f, ho, ho)).astype(F32)
    b = np.zeros(f, F32)
    # cols keeps every chunk's columns (keep=True) for the backward, which then gets x empty
    cols, ybuf = np.empty((c * k * k, n * ho * ho), F32), np.empty((f, n * ho * ho), F32)
    gw, gb, gx = np.empty_like(w), np.empty(f, F32), np.empty_like(x)
    gybuf, no_x, gwt = np.empty_like(ybuf), x[:0], np.empty(c * k * k * f, F32)
    geo = (1, 1, 0, 0, 0, 0, 1, 1)

    def ours_fwd():
        conv.conv2d_forward(x, w, b, y, cols, ybuf, True, False, 1, *geo)

    def ours_both():
        conv.conv2d_forward(x, w, b, y, cols, ybuf, True, False, 1, *geo)
        conv.conv2d_backward(no_x, gy, no_x, w, gw, gb, gx, cols, gybuf, gwt, *geo)
    ref_fwd, ref_both = _reference("conv2d", dict(filters=f, kernel=k), [x],
                                   {"W": w, "b": b}, gy)
    tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)

    def torch_fwd():
        torch.nn.functional.conv2d(tx, tw)

    def torch_both():
        torch.nn.functional.conv2d(tx, tw)
        torch.ops.aten.convolution_backward(tgy, tx, tw, [f], [1, 1], [0, 0], [1, 1], False,
                                            [0, 0], 1, [True, True, True])
    name = f"conv2d {c}->{f} k{k} {h}x{h}"
    return [(name + " fwd", ours_fwd, ref_fwd, torch_fwd),
            (name + " fwd+bwd", ours_both, ref_both, torch_both)]


def maxpool_case(n, c, h):
    import torch
    from nngraph.kernels.cpu import pool
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, c, h, h)).astype(F32)
    ho = h // 2
    y, arg = np.empty((n, c, ho, ho), F32), np.empty((n, c, ho, ho), np.int32)
    gy, gx = rng.normal(size=y.shape).astype(F32), np.empty_like(x)

    def ours_both():
        pool.maxpool2d_forward(x, y, arg, 2, 2, 2, 2, 0, 0, 0, 0)
        pool.maxpool2d_backward(gy, arg, gx)
    ref_fwd, ref_both = _reference("maxpool2d", dict(size=2), [x], {}, gy)
    tx, tgy = torch.from_numpy(x), torch.from_numpy(gy)

    def torch_both():
        out, idx = torch.nn.functional.max_pool2d_with_indices(tx, 2)
        torch.ops.aten.max_pool2d_with_indices_backward(tgy, tx, [2, 2], [2, 2], [0, 0],
                                                        [1, 1], False, idx)
    return [(f"maxpool2d 2x2 {c}x{h}x{h} fwd",
             lambda: pool.maxpool2d_forward(x, y, arg, 2, 2, 2, 2, 0, 0, 0, 0), ref_fwd,
             lambda: torch.nn.functional.max_pool2d_with_indices(tx, 2)),
            (f"maxpool2d 2x2 {c}x{h}x{h} fwd+bwd", ours_both, ref_both, torch_both)]


def xent_case(n, k):
    import torch
    from nngraph.kernels.cpu import softmax
    rng = np.random.default_rng(2)
    x, labels = rng.normal(size=(n, k)).astype(F32), rng.integers(0, k, n)
    gx = np.empty_like(x)
    ref_fwd, ref_both = _reference("softmax_cross_entropy", {}, [x, labels], {}, 1.0)
    tx, tl = torch.from_numpy(x), torch.from_numpy(labels)

    def torch_both():
        txg = tx.detach().requires_grad_()
        torch.nn.functional.cross_entropy(txg, tl).backward()
    return [(f"softmax x-entropy {n}x{k} loss+grad",
             lambda: softmax.softmax_cross_entropy(x, labels, gx, True, 1.0), ref_both,
             torch_both)]


def sgd_case(size):
    import torch
    from nngraph.kernels.cpu import optim
    from nngraph.optimizers import _sgd
    rng = np.random.default_rng(3)
    p, g = rng.normal(size=size).astype(F32), rng.normal(size=size).astype(F32)
    v = np.zeros_like(p)
    start, end = np.array([0], np.int64), np.array([size], np.int64)
    lr_mult = np.ones(1)
    cfg = {"momentum": 0.9, "nesterov": False}
    tp, tg = torch.from_numpy(p.copy()), torch.from_numpy(g)
    tp.grad = tg
    topt = torch.optim.SGD([tp], lr=0.01, momentum=0.9)
    return [(f"sgd momentum, {size} params",
             lambda: optim.sgd_update(p, g, v, start, end, lr_mult, 0.01, 0.9, False),
             lambda: _sgd(p, g, {"v": v}, F32(0.01), cfg, 0), topt.step)]


def lstm_case(n, steps, f, h):
    import torch
    from nngraph.kernels.cpu import recurrent
    rng = np.random.default_rng(4)
    x = rng.normal(size=(n, steps, f)).astype(F32)
    w = (rng.normal(size=(f, 4 * h)) / np.sqrt(f)).astype(F32)
    u = (rng.normal(size=(h, 4 * h)) / np.sqrt(h)).astype(F32)
    b = np.zeros(4 * h, F32)
    y, gy = np.empty((n, steps, h), F32), rng.normal(size=(n, steps, h)).astype(F32)
    xt, hs = np.empty((steps, n, f), F32), np.empty((steps + 1, n, h), F32)
    cs, tcs = np.empty_like(hs), np.empty((steps, n, h), F32)
    gates, d = np.empty((steps, n, 4 * h), F32), np.empty((steps, n, 4 * h), F32)
    gh, gc = np.empty((n, h), F32), np.empty((n, h), F32)
    gx, gw, gu, gb = np.empty_like(x), np.empty_like(w), np.empty_like(u), np.empty_like(b)
    ut, gxt = np.empty((4 * h, h), F32), np.empty_like(xt)

    def ours_fwd():
        recurrent.lstm_forward(x, w, u, b, y, xt, hs, cs, tcs, gates)

    def ours_both():
        ours_fwd()
        recurrent.lstm_backward(w, u, xt, hs, cs, tcs, gates, gy, gx, gw, gu, gb, d, gh, gc,
                                ut, gxt)
    attrs = dict(units=h, return_sequences=True)
    ref_fwd, ref_both = _reference("lstm", attrs, [x], {"W": w, "U": u, "b": b}, gy)
    lstm = torch.nn.LSTM(f, h, batch_first=True)
    tx, tgy = torch.from_numpy(x), torch.from_numpy(gy)

    def torch_fwd():
        with torch.no_grad():
            lstm(tx)

    def torch_both():
        txg = tx.detach().requires_grad_()
        out, _ = lstm(txg)
        out.backward(tgy)
    name = f"lstm T={steps} H={h} N={n}"
    return [(name + " fwd", ours_fwd, ref_fwd, torch_fwd),
            (name + " fwd+bwd", ours_both, ref_both, torch_both)]


def speed_table(threads):
    import torch
    torch.set_num_threads(threads)
    try:                         # numba's np.dot calls scipy's OpenBLAS, numpy has its own
        import scipy.linalg.cython_blas  # noqa: F401  (load it before limiting it)
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        print("threadpoolctl is not installed: BLAS thread counts left as they are")
    rows = (conv_case(64, 1, 28, 6, 5) + maxpool_case(64, 6, 24) + conv_case(64, 6, 12, 16, 5)
            + maxpool_case(64, 16, 8) + xent_case(64, 10) + sgd_case(61706)
            + lstm_case(32, 32, 32, 128))
    # one column at a time: torch's OpenMP threads spin after each call and would steal
    # the cores from the BLAS threads of the other columns if the timings were interleaved
    ours = [best_ms(r[1]) for r in rows]
    ref = [best_ms(r[2], repeat=3) for r in rows]
    tor = [best_ms(r[3]) for r in rows]
    print(f"{'kernel (float32, ms)':40s} {'nngraph':>8s} {'numpy ref':>10s} {'torch':>8s}"
          f" {'ref/ours':>9s} {'torch/ours':>10s}")
    for (name, *_), a, b, c in zip(rows, ours, ref, tor):
        print(f"{name:40s} {a:8.3f} {b:10.3f} {c:8.3f} {b / a:9.1f} {c / a:10.2f}")


# ---------------------------------------------------------------------- compile times

def _compile_calls():
    """(name, thunk) pairs calling every public kernel once with small float32 arrays."""
    from nngraph.kernels.cpu import (blas, check, conv, conv_wide, embedding, norm, optim, pool,
                                     recurrent, softmax)
    z = lambda *s: np.zeros(s, F32)                                     # noqa: E731
    seg = (np.array([0], np.int64), np.array([4], np.int64), np.ones(1))
    geo = (1, 1, 0, 0, 0, 0, 1, 1)
    return [
        ("gemm", lambda: blas.gemm(1.0, z(2, 3), False, z(3, 4), False, 0.0, z(2, 4))),
        ("conv2d_forward", lambda: conv.conv2d_forward(z(2, 1, 4, 4), z(3, 1, 2, 2), z(3),
                                                       z(2, 3, 3, 3), z(4, 18), z(3, 18), True,
                                                       False, 1, *geo)),
        ("conv2d_forward_wide", lambda: conv_wide.conv2d_forward_wide(
            z(2, 1, 4, 4), z(3, 1, 2, 2), z(3), z(2, 3, 3, 3), z(96), z(3, 24), False, 1,
            0, 0, 0, 0)),
        ("conv2d_backward", lambda: conv.conv2d_backward(z(2, 1, 4, 4), z(2, 3, 3, 3),
                                                         z(0, 0, 0, 0), z(3, 1, 2, 2),
                                                         z(3, 1, 2, 2), z(3), z(2, 1, 4, 4),
                                                         z(4, 18), z(3, 18), z(0), *geo)),
        ("conv2d_transpose_forward", lambda: conv.conv2d_transpose_forward(
            z(2, 3, 3, 3), z(3, 1, 2, 2), z(2, 1, 4, 4), z(3, 18), z(4, 18), 1, 1, 0, 0, 0, 0)),
        ("conv2d_transpose_backward", lambda: conv.conv2d_transpose_backward(
            z(2, 3, 3, 3), z(3, 1, 2, 2), z(2, 1, 4, 4), z(3, 1, 2, 2), z(1), z(2, 3, 3, 3),
            z(3, 18), z(4, 18), z(3, 18), z(0), 1, 1, 0, 0, 0, 0)),
        ("maxpool2d_forward", lambda: pool.maxpool2d_forward(
            z(1, 1, 4, 4), z(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int32), 2, 2, 2, 2, 0, 0, 0,
            0)),
        ("maxpool2d_backward", lambda: pool.maxpool2d_backward(
            z(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int32), z(1, 1, 4, 4))),
        ("avgpool2d_forward", lambda: pool.avgpool2d_forward(z(1, 1, 4, 4), z(1, 1, 2, 2),
                                                             2, 2, 2, 2, 0, 0, 0, 0)),
        ("avgpool2d_backward", lambda: pool.avgpool2d_backward(z(1, 1, 2, 2), z(1, 1, 4, 4),
                                                               2, 2, 2, 2, 0, 0, 0, 0)),
        ("global_avgpool2d fwd+bwd", lambda: (pool.global_avgpool2d_forward(z(1, 2, 3, 3),
                                                                            z(1, 2)),
                                              pool.global_avgpool2d_backward(z(1, 2),
                                                                             z(1, 2, 3, 3)))),
        ("upsample2d fwd+bwd", lambda: (pool.upsample2d_forward(z(1, 1, 2, 2), z(1, 1, 4, 4), 2,
                                                                2),
                                        pool.upsample2d_backward(z(1, 1, 4, 4), z(1, 1, 2, 2), 2,
                                                                 2))),
        ("batchnorm_forward_train", lambda: norm.batchnorm_forward_train(
            z(2, 3, 4), z(3), z(3), z(2, 3, 4), z(2, 3, 4), z(3), z(3), z(3), 0.9, 1e-5)),
        ("batchnorm_forward_eval", lambda: norm.batchnorm_forward_eval(
            z(2, 3, 4), z(3), z(3), z(2, 3, 4), z(2, 3, 4), z(3), z(3), z(3) + 1, 1e-5)),
        ("batchnorm_backward", lambda: norm.batchnorm_backward(
            z(2, 3, 4), z(2, 3, 4), z(3), z(3), z(2, 3, 4), z(3), z(3), True)),
        ("embedding fwd+bwd", lambda: (embedding.embedding_forward(np.zeros(2, np.int64),
                                                                   z(5, 3), z(2, 3)),
                                       embedding.embedding_backward(np.zeros(2, np.int64),
                                                                    z(2, 3), z(5, 3)))),
        ("softmax_cross_entropy", lambda: softmax.softmax_cross_entropy(
            z(2, 3), np.zeros(2, np.int64), z(2, 3), True, 1.0)),
        ("softmax_cross_entropy_probs", lambda: softmax.softmax_cross_entropy_probs(
            z(2, 3), z(2, 3), z(2, 3), True, 1.0)),
        ("softmax fwd+bwd", lambda: (softmax.softmax_forward(z(2, 3), z(2, 3)),
                                     softmax.softmax_backward(z(2, 3), z(2, 3), z(2, 3)))),
        ("log_softmax fwd+bwd", lambda: (softmax.log_softmax_forward(z(2, 3), z(2, 3)),
                                         softmax.log_softmax_backward(z(2, 3), z(2, 3),
                                                                      z(2, 3)))),
        ("rnn_forward", lambda: recurrent.rnn_forward(z(2, 3, 4), z(4, 5), z(5, 5), z(5),
                                                      z(2, 3, 5), z(3, 2, 4), z(4, 2, 5))),
        ("rnn_backward", lambda: recurrent.rnn_backward(
            z(4, 5), z(5, 5), z(3, 2, 4), z(4, 2, 5), z(2, 3, 5), z(2, 3, 4), z(4, 5), z(5, 5),
            z(5), z(3, 2, 5), z(2, 5), z(5, 5), z(3, 2, 4))),
        ("lstm_forward", lambda: recurrent.lstm_forward(
            z(2, 3, 4), z(4, 20), z(5, 20), z(20), z(2, 3, 5), z(3, 2, 4), z(4, 2, 5),
            z(4, 2, 5), z(3, 2, 5), z(3, 2, 20))),
        ("lstm_backward", lambda: recurrent.lstm_backward(
            z(4, 20), z(5, 20), z(3, 2, 4), z(4, 2, 5), z(4, 2, 5), z(3, 2, 5), z(3, 2, 20),
            z(2, 3, 5), z(2, 3, 4), z(4, 20), z(5, 20), z(20), z(3, 2, 20), z(2, 5), z(2, 5),
            z(20, 5), z(3, 2, 4))),
        ("gru_forward", lambda: recurrent.gru_forward(
            z(2, 3, 4), z(4, 15), z(5, 15), z(15), z(15), z(2, 3, 5), z(3, 2, 15), z(3, 2, 4),
            z(4, 2, 5), z(3, 2, 15), z(3, 2, 5))),
        ("gru_backward", lambda: recurrent.gru_backward(
            z(4, 15), z(5, 15), z(3, 2, 4), z(4, 2, 5), z(3, 2, 15), z(3, 2, 5), z(2, 3, 5),
            z(2, 3, 4), z(4, 15), z(5, 15), z(15), z(15), z(3, 2, 15), z(3, 2, 15), z(2, 5),
            z(15, 5), z(3, 2, 4))),
        ("sgd_update, momentum 0", lambda: optim.sgd_update(z(4), z(4), z(0), *seg, 0.1, 0.0,
                                                            False)),
        ("sgd_update, momentum", lambda: optim.sgd_update(z(4), z(4), z(4), *seg, 0.1, 0.9,
                                                          False)),
        ("rmsprop_update", lambda: optim.rmsprop_update(z(4), z(4), z(4), *seg, 0.1, 0.9, 1e-7)),
        ("adagrad_update", lambda: optim.adagrad_update(z(4), z(4), z(4), *seg, 0.1, 1e-7)),
        ("adam_update", lambda: optim.adam_update(z(4), z(4), z(4), z(4), *seg, 0.1, 0.9, 0.999,
                                                  1e-7, 0)),
        ("regularize + max_norm", lambda: (optim.regularize(z(4), z(4), *seg[:2], np.ones(1),
                                                            np.ones(1)),
                                           optim.max_norm(z(4), seg[0], np.ones(1, np.int64),
                                                          np.full(1, 4), np.zeros(1, np.int64),
                                                          np.ones(1)))),
        ("all_finite + int_range", lambda: (check.all_finite(z(4)),
                                            check.int_range(np.zeros(2, np.int64)))),
    ]


def compile_table():
    """Run in a child with an empty NUMBA_CACHE_DIR so that nothing comes from a cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        subprocess.run([sys.executable, __file__, "--compile-child"], env=env, check=True)


def _compile_child():
    import numba
    t = time.process_time()
    numba.njit(lambda a: a + 1)(1)                     # numba's own first-use cost
    print(f"numba warm-up (first njit of the process): {time.process_time() - t:.2f} s")
    print(f"{'kernel (float32)':30s} {'own, s':>8s}")
    total = 0.0
    for name, thunk in _compile_calls():
        t = time.process_time()
        thunk()
        dt = time.process_time() - t
        total += dt
        print(f"{name:30s} {dt:8.2f}")
    print(f"{'all kernels, float32':30s} {total:8.2f}")
    # what a caller pays: a new njit function calling already-compiled kernels
    from nngraph.kernels.cpu import conv, optim, pool, softmax

    @numba.njit
    def lenet_like(x, w, b, y, cols, ybuf, gy, gw, gb, gx, gybuf, py, arg, pgx, logits,
                   labels, glog, p, g, v, s0, s1, lr):
        conv.conv2d_forward(x, w, b, y, cols, ybuf, True, True, 1, 1, 1, 0, 0, 0, 0, 1, 1)
        pool.maxpool2d_forward(y, py, arg, 2, 2, 2, 2, 0, 0, 0, 0)
        loss, _ = softmax.softmax_cross_entropy(logits, labels, glog, True, 1.0)
        pool.maxpool2d_backward(py, arg, pgx)
        conv.conv2d_backward(x[:0], gy, y, w, gw, gb, gx, cols, gybuf, b[:0],
                             1, 1, 0, 0, 0, 0, 1, 1)
        optim._sgd_momentum(p, g, v, s0, s1, lr, 0.1, 0.9, False)    # what sgd_update calls
        return loss
    z = lambda *sh: np.zeros(sh, F32)                                   # noqa: E731
    t = time.process_time()
    lenet_like(z(2, 1, 4, 4), z(3, 1, 2, 2), z(3), z(2, 3, 3, 3), z(4, 18), z(3, 18),
               z(2, 3, 3, 3), z(3, 1, 2, 2), z(3), z(2, 1, 4, 4), z(3, 18), z(2, 3, 1, 1),
               np.zeros((2, 3, 1, 1), np.int32), z(2, 3, 3, 3), z(2, 3), np.zeros(2, np.int64),
               z(2, 3), z(4), z(4), z(4), np.array([0]), np.array([4]), np.ones(1))
    print(f"a new njit caller of conv fwd/bwd, maxpool fwd/bwd, x-entropy, sgd "
          f"(kernels already compiled): {time.process_time() - t:.2f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compile", action="store_true", help="cold compile time of each kernel")
    ap.add_argument("--threads", type=int, default=2,
                    help="BLAS and torch threads for the speed table (default 2)")
    ap.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.compile_child:
        _compile_child()
    elif args.compile:
        compile_table()
    else:
        speed_table(args.threads)
