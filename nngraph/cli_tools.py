"""The commands that look inside the compiler: compile and bench.

    nngraph compile specs/lenet5.yaml                  the fused groups and what runs each
    nngraph compile specs/lenet5.yaml --emit build/    build/lenet5_float32.py, build/index.txt
    nngraph bench specs/lenet5.yaml --batch-size 64 --steps 50
    nngraph bench specs/lenet5.yaml --profile          time per kernel, in a table
"""
from __future__ import annotations

import contextlib
import functools
import os
import statistics
import time

import numpy as np

from .errors import NNGraphError


# ---------------------------------------------------------------------------- compile

def cmd_compile(args) -> int:
    from . import __version__, load
    from .backends import codegen_class
    from .backends.cpu.calls import codegen, group_calls
    from .program import build_program
    if args.passes:
        from .pipeline import listing
        print(listing(), end="")
        return 0
    if not args.spec:
        raise NNGraphError("nngraph compile needs a SPEC (or --passes)")
    net = load(args.spec)
    if args.backend == "cuda" and args.frozen:
        raise NNGraphError("--frozen: the cuda backend has no frozen form; drop --frozen")
    # source only: no GPU is needed to write or read a CUDA module
    gen = codegen(build_program(net), args.dtype, codegen_class(args.backend))
    module = f"{net.name}_{args.dtype}" + ("_cuda" if args.backend == "cuda" else "") + ".py"
    index = describe(net, gen, group_calls(gen.program, gen=gen), module if args.emit else None)
    if args.frozen and not args.emit:
        raise NNGraphError("--frozen writes a module: give --emit DIR too")
    if not args.emit:
        print(index, end="")
        return 0
    os.makedirs(args.emit, exist_ok=True)
    path = os.path.join(args.emit, module)
    with open(path, "w", encoding="utf-8") as f:
        f.write(gen.source())
    with open(os.path.join(args.emit, "index.txt"), "w", encoding="utf-8") as f:
        f.write(index)
    print(f"wrote {path} ({len(gen.kernels)} kernels, nngraph {__version__}) and "
          f"{os.path.join(args.emit, 'index.txt')}")
    if args.frozen:                 # Model.freeze()'s module: predict on packed weights
        from .backends.cpu.codegen import CPUCodegen
        from .kernels.cpu.packed import PACK_MIN
        frozen = CPUCodegen(gen.program, args.dtype, frozen=True)
        path = os.path.join(args.emit, f"{net.name}_{args.dtype}_frozen.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(frozen.source())
        count = len(frozen.kernels)
        packed = ", ".join(sorted(frozen.packed_params)) or "none"
        print(f"wrote {path} ({count} kernel{'s' * (count != 1)}; dense weights {packed}: "
              f"packed when they have {PACK_MIN:,} elements or more and the BLAS is MKL)")
    return 0


def describe(net, gen, calls: dict, module: str | None = None) -> str:
    """The groups of a generated module, what runs each, and the arena, as plain text."""
    from .backends.cpu.calls import arena_bytes
    runs = [c.runs for c in calls.values()]
    lines = [f"{net.name}: generated {gen.stage.upper()} code ({gen.dtype.name})", ""]
    lines.append(f"spec     {net.file or '(not from a file)'}")
    lines += [f"module   {module}"] if module else []
    lines.append(f"groups   {len(calls)} fused groups: " + ", ".join(
        f"{runs.count(r)} {r}" for r in ("generated", "hand-written", "reference", "view")
        if r != "view" or r in runs))
    for mode in ("train", "evaluate", "predict"):
        floats, ints = arena_bytes(gen, mode)
        lines.append(f"arena    {mode:<9}{_bytes(floats + ints):>10} per sample "
                     f"({floats // gen.dtype.itemsize:,} {gen.dtype.name}"
                     + (f" + {ints // 8:,} int64)" if ints else ")"))
    lines.append("")
    rows = [("group", "kind", "runs", "nodes", "calls")]
    for name, c in calls.items():
        rows.append((name, c.group.kind, c.runs, " + ".join(map(str, c.group.nodes)), c.describe()))
    lines += _table(rows)
    lines += [""] * bool(gen.pooled or gen.wide) + [   # what only evaluate and predict do
        f"evaluate and predict: {name} also pools {pool} in its copy back ({pool} runs no "
        f"kernel of its own there)" for name, pool in gen.pooled.items()]
    lines += [f"evaluate and predict: {name} unfolds its input in whole padded rows "
              f"(_conv_wide.conv2d_forward_wide)" for name in calls if name in gen.wide]
    cuda = gen.stage == "cuda"
    lines += ["", "generated      " + ("@cuda.jit kernels of the module with their launchers"
                                     if cuda else "njit kernels of the module") +
              ", one per group (k_<group>)",
              "hand-written   " + ("kernels/cuda (gemm, reductions)" if cuda else
                                   "kernels/cpu (conv, pooling, ...)") +
              " with generated epilogues",
              "reference      the op's numpy rule, called from the driver" +
              (" on host copies" if cuda else "") + ": correct, slow; a lowering in "
              f"nngraph/backends/{gen.stage}/lower/ makes it fast",
              "view           nothing runs: the output is a view of the input (flatten, "
              "reshape)",
              "arena          all intermediate buffers of one step, reused when lifetimes "
              "allow; multiply by the batch size"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- bench

def cmd_bench(args) -> int:
    from . import compile, load
    net = load(args.spec)
    batch_size = args.batch_size or int(net.train.get("batch_size", 32))
    if batch_size < 1 or args.steps < 1:
        raise NNGraphError("--batch-size and --steps must be at least 1")
    if not net.losses:
        raise NNGraphError(f"{args.spec} has no losses: there is no training step to time")
    data = random_batch(net, batch_size, np.random.default_rng(args.seed))
    t0 = time.perf_counter()
    model = compile(net, backend=args.backend, seed=args.seed, dtype=args.dtype,
                    device=args.device)
    compile_s = time.perf_counter() - t0
    batch = model._batch(data, True)         # validated once, as fit does

    def step():
        return model._train_batch(batch)[0]
    t0 = time.perf_counter()
    step()
    first_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        step()
    profile = KernelProfile(model) if args.profile else None
    times = []
    with profile or contextlib.nullcontext():
        for _ in range(args.steps):
            t0 = time.perf_counter()
            loss = step()
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(f"bench {net.name} on {model.backend} ({args.dtype}): batch {batch_size}, "
          f"{args.steps} steps after {1 + args.warmup} warm-up, random inputs")
    fused = model.backend != "reference"
    print(f"  compile      {compile_s:9.3f} s   spec to runnable model" +
          (" (codegen, import)" if fused else ""))
    print(f"  first step   {first_s:9.3f} s   " +
          ("includes Numba's JIT, or loading its cache" if fused else "one step"))
    print(f"  step         {median * 1e3:9.3f} ms  median (min {min(times) * 1e3:.3f}, "
          f"mean {statistics.fmean(times) * 1e3:.3f})"
          + ("; while profiled: run without --profile for speed" if profile else ""))
    print(f"  throughput   {batch_size / median:9,.0f} samples/s")
    if fused:
        from .kernels.cpu.blas import PROVIDER
        print(f"  matrix products through {PROVIDER} (NNGRAPH_BLAS=mkl|openblas chooses)")
    if not np.isfinite(loss):
        print("  note: the loss is not finite on random data, so updates were skipped")
    if profile:
        print()
        print("\n".join(profile.report(sum(times), args.steps)))
    return 0


def random_batch(net, n: int, rng) -> dict:
    """Inputs shaped like the spec's: normal features, uniform [0, 1) float targets, and
    integers inside every bound an index input has (classes, vocabulary)."""
    from .batch import _index_bounds
    out = {}
    for name, d in net.inputs.items():
        shape = (n,) + tuple(d.shape)
        if str(d.dtype).startswith("float"):
            arr = rng.random(shape) if name in net.label_inputs else rng.standard_normal(shape)
        else:
            bounds = [b for b, _ in _index_bounds(net, name)]
            arr = rng.integers(0, min(bounds) if bounds else 2, size=shape)
        out[name] = arr.astype(d.dtype)
    return out


class KernelProfile:
    """While active, times every call the generated train driver makes: its `k_*` kernels,
    the hand-written kernels (`_conv.`, `_pool.`), the reference rules (`R.forward`, ...),
    and the optimizer update. Each call is put down to its fused group by its position in
    the driver. Everything is restored on exit. Run a step before entering: kernels must be
    compiled before the names they could see are swapped for timing wrappers.

        >>> model.train_step(batch)                       # compiles   # doctest: +SKIP
        >>> with KernelProfile(model) as prof:
        ...     model.train_step(batch)
        >>> print("\n".join(prof.report(total_s, steps=1)))
    """

    def __init__(self, model):
        from .backends.cpu.calls import call_sites, callees, codegen
        ex = model.executor
        if not hasattr(ex, "module"):
            raise NNGraphError(f"--profile times the kernels of the generated CPU module; the "
                               f"'{model.backend}' backend has none: use --backend cpu")
        self.ex, self.module, self.model = ex, ex.module, model
        gen = codegen(model.program, model.dtype)
        same = gen.drivers["train"] == ex.gen.drivers["train"]
        self.sites = call_sites(gen, "train") if same else []     # else no groups, only names
        self.names = set(callees(ex.gen.drivers["train"]))
        self.rows: dict = {}                   # (label, group) -> [calls, seconds, kind]
        self.pos, self.saved = 0, {}

    def _timed(self, callee, fn, label=None):
        from .backends.cpu.calls import callee_kind
        kind = callee_kind(callee)

        def timed(*args, **kwargs):
            pos, self.pos = self.pos, self.pos + 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                site = self.sites[pos] if pos < len(self.sites) else None
                group = site[1] if site and site[0] == callee else "?"
                name = label(args) if label else callee
                row = self.rows.setdefault((name, group), [0, 0.0, kind])
                row[0] += 1
                row[1] += dt
        return timed

    def __enter__(self):
        m = self.module
        # Timed calls go to one table in order: whole batches on this thread, not halves on
        # two (the split the executor would make is put back on exit).
        self.split_modes = getattr(self.ex, "split_modes", None)
        if self.split_modes is not None:
            self.ex.split_modes = {mode: False for mode in ("train", "evaluate", "predict")}
        # and through the module's names, which are swapped below, not past them (a direct
        # driver calls the kernels it was built with: backends/cpu/fast_path.py)
        self.direct = getattr(self.ex, "direct", None)
        if self.direct is not None:
            self.ex.direct = {mode: None for mode in ("train", "evaluate", "predict")}
        modules = {}
        for callee in self.names:
            head, _, attr = callee.partition(".")
            if head == "R":
                continue
            if attr:
                modules.setdefault(head, set()).add(attr)
            else:
                self._swap(m, callee, self._timed(callee, getattr(m, callee)))
        for head, attrs in modules.items():
            target = getattr(m, head)
            self._swap(m, head, _Proxy(target, {a: self._timed(f"{head}.{a}", getattr(target, a))
                                                for a in attrs}))
        rt = self.ex.runtime
        for meth in ("forward", "backward", "loss"):
            self._swap(rt, meth, self._timed(f"R.{meth}", getattr(rt, meth),
                                             lambda a, meth=meth: f"R.{meth}({a[0]})"))
        if hasattr(self.ex, "_update"):
            kind = self.model.optimizer.config["type"]
            self._swap(self.ex, "_update", self._outside(f"optimizer update ({kind})",
                                                         self.ex._update))
        driver = m.train

        @functools.wraps(driver)
        def train(*args):
            self.pos = 0
            return driver(*args)
        self._swap(m, "train", train)
        return self

    def _outside(self, label, fn):
        """A timed call that is not one of the driver's lines."""
        def timed(*args):
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                row = self.rows.setdefault((label, "-"), [0, 0.0, "hand-written"])
                row[0] += 1
                row[1] += time.perf_counter() - t0
        return timed

    def _swap(self, owner, name, value):
        self.saved[(id(owner), name)] = (owner, name, owner.__dict__.get(name, _ABSENT))
        setattr(owner, name, value)

    def __exit__(self, *exc):
        if self.split_modes is not None:
            self.ex.split_modes = self.split_modes
        if self.direct is not None:
            self.ex.direct = self.direct
        for owner, name, old in self.saved.values():
            if old is _ABSENT:
                delattr(owner, name)           # an instance attribute shadowing a method
            else:
                setattr(owner, name, old)
        self.saved = {}
        return False

    def report(self, total_s: float, steps: int) -> list[str]:
        """The table: one row per kernel or node, slowest first, then what is left."""
        rows = [("kernel / node", "group", "runs", "calls", "total ms", "% step")]
        timed = 0.0
        for (name, group), (calls, secs, kind) in sorted(self.rows.items(),
                                                         key=lambda kv: -kv[1][1]):
            timed += secs
            rows.append((name, group, kind, f"{calls:,}", f"{secs * 1e3:.3f}",
                         f"{100 * secs / total_s:.1f}"))
        other = max(total_s - timed, 0.0)
        rows.append(("other (Python between calls)", "", "", "", f"{other * 1e3:.3f}",
                     f"{100 * other / total_s:.1f}"))
        rows.append(("all steps", "", "", f"{steps:,}", f"{total_s * 1e3:.3f}", "100.0"))
        per_step = sum(r[0] for r in self.rows.values()) / max(steps, 1)
        split = any((self.split_modes or {}).values())
        return ([f"profile: {per_step:.0f} timed calls per step"
                 + (" (batches whole, on one thread, while timed)" if split else "")]
                + _table(rows, right={3, 4, 5}))


class _Proxy:
    """Stands in for a kernel module (`_conv`) with some of its functions timed."""

    def __init__(self, target, overrides):
        self._target, self._overrides = target, overrides

    def __getattr__(self, name):
        return self._overrides.get(name) or getattr(self._target, name)


_ABSENT = object()


# ---------------------------------------------------------------------------- helpers

def _table(rows, right=()) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [str(v).rjust(w) if i in right else str(v).ljust(w)
                 for i, (v, w) in enumerate(zip(r, widths))]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024


def register(sub) -> None:
    s = sub.add_parser("compile", help="show or write the generated kernel source",
                       description="Generate the fused kernels of SPEC. Without --emit, print "
                       "the fused groups and what runs each; with --emit DIR, write the module "
                       "(DIR/NAME_DTYPE.py) and an index (DIR/index.txt). Example: nngraph "
                       "compile specs/lenet5.yaml --emit build/")
    s.add_argument("spec", metavar="SPEC", nargs="?")
    s.add_argument("--backend", choices=["cpu", "cuda"], default="cpu")
    s.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    s.add_argument("--emit", metavar="DIR", help="write the source and index.txt here")
    s.add_argument("--passes", action="store_true",
                   help="list the compiler's passes, stage by stage (nngraph/pipeline.py); "
                        "NNGRAPH_DEBUG=passes prints what each made")
    s.add_argument("--frozen", action="store_true",
                   help="with --emit, also write the predict-only module of Model.freeze() "
                        "(DIR/NAME_DTYPE_frozen.py)")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("bench", help="time training steps on random data",
                       description="Time training steps of SPEC on random inputs shaped like "
                       "its own (valid class and token indices); prints ms/step, samples/s and "
                       "compile time. --profile adds the time of every kernel. Example: "
                       "nngraph bench specs/lenet5.yaml --batch-size 64 --profile")
    s.add_argument("spec", metavar="SPEC")
    s.add_argument("--backend", choices=["cpu", "reference", "cuda"], default="cpu")
    s.add_argument("--device", type=int, default=None, help="the GPU of --backend cuda "
                   "(default 0)")
    s.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    s.add_argument("--batch-size", type=int, help="default: the spec's train.batch_size")
    s.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    s.add_argument("--warmup", type=int, default=2, help="untimed steps after the first "
                   "(default 2)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--profile", action="store_true", help="time every kernel of the "
                   "generated module (cpu backend)")
    s.set_defaults(func=cmd_bench)
