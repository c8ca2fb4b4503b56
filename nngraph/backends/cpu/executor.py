"""The CPU backend: generated Numba kernels over one arena, parameters in one flat array.

Parameters, their gradients and the optimizer's state each live in one contiguous array;
`model.params` holds views into it, so the whole update is one pass over memory. Groups no
lowering covers run their numpy reference rule (see lower/__init__.py), with the same
random streams as the reference backend, so both backends compute the same numbers.
"""
from __future__ import annotations

import functools
import math
import os
import re
from operator import is_
from time import perf_counter

import numpy as np

from ... import optimizers
from ...batch import refuse_non_finite
from .codegen import GEMM_MODULES, CPUCodegen, calls_gemm
from .module import load_module, module_file
from .site import STREAM_WORDS
from ...ops.base import RunContext
from ...passes.fuse import _ident
from . import compiler, fast_path, parallel, scheduler


_NOT_PACKED = np.zeros(0, np.uint8)     # a weight with no packed copy: gemm_packed calls gemm

SPLIT_MIN = 8
"""A batch runs as two halves on two threads from 2 * SPLIT_MIN samples on (see _splits).
Measured on the 2-core development VM, median ms per call, one thread -> two halves:
LeNet-5 train at batch 8 0.72 -> 0.62, 16 1.22 -> 0.93, 32 1.53 -> 0.93, predict at 16
0.38 -> 0.28; LSTM (32 steps, 128 units) train at 8 1.4-1.8 -> 1.9-2.4 (slower), 16
2.4 -> 1.9, 32 5.1 -> 4.35, predict at 32 2.16 -> 1.43. At batch 4 the hand-over costs
more than it saves (LeNet-5 train 0.23 -> 0.37)."""

TEAM_MIN = 40_000
"""The optimizer update runs on MKL's threads from this many parameters on (see _team_task).
Train steps of 784-U-10 MLPs at batch 64, median us, one thread -> the team: 6,370
parameters 135 -> 151, 25,450 110 -> 116, 31,810 204 -> 211, 38,170 203 -> 205, 50,890
187 -> 150; 784-128-64-10 (109,386) ~325 -> ~298."""


def threads(setting: str | None = None) -> int:
    """Threads a batch may run on: 1 with NNGRAPH_THREADS=1 or one usable core, else 2
    (whether a run takes the second core is then measured, see scheduler.py)."""
    return 1 if (setting or scheduler.setting()) == "one" else 2


class CPUExecutor:
    name = "cpu"

    def __init__(self, program, dtype, frozen: bool = False):
        self.program, self.dtype = program, np.dtype(dtype)
        self.gen = CPUCodegen(program, self.dtype, frozen)
        if frozen:
            from ...kernels.cpu import packed
            if not any(packed.packs(program.params[k].spec.shape, self.dtype)
                       for k in self.gen.packed_params):
                # nothing to pack: the model's own module, compiled already
                frozen, self.gen = False, CPUCodegen(program, self.dtype)
        self.frozen = frozen            # predict only, dense weights packed (Model.freeze)
        self.source = self.gen.source()
        name = f"{program.net.name}_{self.dtype.name}" + ("_frozen" if frozen else "")
        # A network never generated before is compiled for the first time: start the second
        # compiling process now, so that it is ready by the time the calls are recorded (a
        # fork compiles the BLAS product meanwhile, see compiler.py).
        first_time = not os.path.exists(module_file(name, self.source)[1])
        self.first_time = first_time        # (the CLI says that the kernels compile)
        self.worker = None
        if first_time and compiler.jobs() > 1:
            kind = "s" if self.dtype == np.float32 else "d"
            self.worker = compiler.Worker([kind] if calls_gemm(self.source) else [])
        self.module, self.path = load_module(name, self.source)
        # team: MKL chooses its threading layer when a model is built, as the README says
        # (kernels/cpu/team.py); the optimizer's kernels are imported when training needs
        # them (the optim property)
        from ...kernels.cpu import blas, check, team  # noqa: F401
        self.blas, self.check = blas, check
        self.runtime = _Reference(program)
        self.arenas, self.bound = {}, {}
        infos = program.params
        sizes = [math.prod(p.spec.shape) for p in infos.values()]
        self.flat_params = np.zeros(sum(sizes), self.dtype)
        self.flat_grads = np.zeros(sum(sizes), self.dtype)
        self.pviews, self.gviews, self.segments, offset = {}, {}, {}, 0
        for (key, info), size in zip(infos.items(), sizes):
            shape = info.spec.shape
            self.pviews[key] = self.flat_params[offset:offset + size].reshape(shape)
            self.gviews[key] = self.flat_grads[offset:offset + size].reshape(shape)
            self.segments[key] = (offset, offset + size)
            offset += size
        self.pview_list = list(self.pviews.values())
        self.packed = {k: _NOT_PACKED for k in self.gen.packed_params}   # see pack()
        self.trainable = {k: p for k, p in infos.items() if p.trainable}
        seg = list(self.segments.values())
        self.seg_start = np.array([a for a, _ in seg], np.int64)
        self.seg_end = np.array([b for _, b in seg], np.int64)
        self.seg_lr = np.array([p.lr_mult if p.trainable else 0.0 for p in infos.values()])
        reg = [k for k, p in self.trainable.items()
               if p.regularizer.get("l1") or p.regularizer.get("l2")]
        self.reg_start = np.array([self.segments[k][0] for k in reg], np.int64)
        self.reg_end = np.array([self.segments[k][1] for k in reg], np.int64)
        self.reg_l1 = np.array([infos[k].regularizer.get("l1", 0.0) for k in reg])
        self.reg_l2 = np.array([infos[k].regularizer.get("l2", 0.0) for k in reg])
        self.max_norm = {k: p.regularizer["max_norm"] for k, p in self.trainable.items()
                         if "max_norm" in p.regularizer}
        g = program.graph
        self.loss_inputs = {i for l in program.losses for i in g.nodes[l]["inputs"]}
        self.slots, self.team_updates = {}, {}
        self.state = {}
        self.compiled, self.compile_report = set(), None
        self.direct: dict = {}          # {mode: fast_path.Direct or None} (see _driver)
        self.ran: set = set()           # modes whose driver has run
        setting = scheduler.setting()
        self.threads, self.split_modes, self.second_grads = threads(setting), {}, None
        self.schedules = scheduler.Schedules(setting)
        self.wide = self.threads >= 2       # whether the run under way takes both cores
        self.names = {n: f"v_{_ident(n)}" for n in g.nodes}
        self.output_buffers = [(name, self.names[node]) for name, node in program.outputs.items()]
        self.uses_reference = {m: "R." in d for m, d in self.gen.drivers.items()}
        # {mode: inputs that its kernels check for NaN and infinity on the way} (see
        # Site.check_input): the batch checks skip their own scan of them
        self.checks_finite = {m: frozenset(v) for m, v in self.gen.checked_inputs.items()}
        # what is read after a run: the outputs and what the losses compare
        self.read_after = sorted({self.names[n] for n in
                                  set(self.loss_inputs) | set(program.outputs.values())})
        # Gradients of trainable parameters that no loss reaches (an unused layer): the
        # train driver never writes them, so _backprop zeroes them before each step's
        # penalty gradient is added, which would otherwise pile up from step to step.
        train = self.gen.drivers.get("train", "")
        self.unreached = [self.gviews[k] for k in self.trainable
                          if not re.search(rf"\bgp_{_ident(k)}\b", train)]

    @functools.cached_property
    def optim(self):
        """kernels/cpu/optim.py, imported when training first needs it: a process that
        only predicts or evaluates never does."""
        from ...kernels.cpu import optim
        return optim

    def adopt(self, params: dict) -> dict:
        """Move initial parameters into flat storage; returns the views that replace them."""
        for k, v in params.items():
            self.pviews[k][...] = v
        return dict(self.pviews)

    def pack(self) -> None:
        """Pack the weights that a frozen module's dense layers multiply by (packed.pack):
        copies made now, which later changes to the parameters do not reach."""
        from ...kernels.cpu.packed import pack
        for key in self.packed:
            self.packed[key] = pack(self.pviews[key])

    def adopt_optimizer(self, opt, state: dict) -> dict:
        """Keep each optimizer slot of all parameters in one flat array, as parameters are,
        so the update is one fused pass; returns views named like Optimizer.init_state's."""
        self.opt = opt
        self.slots = {slot: np.zeros_like(self.flat_params) for slot in opt.slots}
        self.team_updates = {}          # {update kernel: TeamUpdate or None}, per slot arrays
        views = {}
        for key in self.trainable:
            lo, hi = self.segments[key]
            for slot, flat in self.slots.items():
                views[f"{key}/{slot}"] = flat[lo:hi].reshape(self.pviews[key].shape)
                if f"{key}/{slot}" in state:
                    views[f"{key}/{slot}"][...] = state[f"{key}/{slot}"]
        return views

    def _update(self, opt, t):
        kernel, args = self._update_call(opt, t)
        on_team = self.team_updates.get(kernel, False)
        if on_team is False:
            on_team = self.team_updates[kernel] = self._team_update(kernel, args)
        if on_team is None or not self.wide:
            kernel(*args)
        else:
            on_team.run(args, self.threads)
        for k, limit in self.max_norm.items():
            optimizers.apply_max_norm(self.pviews[k], limit, self.pviews[k].shape)

    def _team_task(self, kernel, args):
        """The task that runs the update on the BLAS's own threads (kernels/cpu/team.py)
        where that pays, else None: from TEAM_MIN parameters, when training runs whole
        batches (its products keep MKL's threads awake; beside the halves of a split batch
        they sleep)."""
        if self.threads < 2 or self.flat_params.size < TEAM_MIN or self._splits("train"):
            return None
        return self.optim.TeamUpdate.task_for(kernel, args)

    def _team_update(self, kernel, args):
        task = self._team_task(kernel, args)
        return None if task is None else self.optim.TeamUpdate(kernel, args)

    def _update_call(self, opt, t):
        """(kernel, arguments) of the optimizer update for step t."""
        c, p, g = opt.config, self.flat_params, self.flat_grads
        lr = opt.lr_at(t)
        args = (self.seg_start, self.seg_end, self.seg_lr, lr)
        if c["type"] == "sgd":
            v = self.slots.get("v", np.zeros(0, p.dtype))
            return self.optim.sgd_call(p, g, v, *args, c["momentum"], c["nesterov"])
        if c["type"] == "rmsprop":
            return self.optim.rmsprop_update, (p, g, self.slots["s"], *args, c["rho"], c["eps"])
        if c["type"] == "adagrad":
            return self.optim.adagrad_update, (p, g, self.slots["s"], *args, c["eps"])
        return self.optim.adam_update, (p, g, self.slots["m"], self.slots["v"], *args, c["beta1"],
                                   c["beta2"], c["eps"], t)

    # ------------------------------------------------------------------ running
    def _views(self, mode, n):
        """Views of a new arena for `mode` at batch size n, and of the parameters."""
        buffers, sizes = self.gen.plans[mode]
        arenas = {"float": np.zeros(max(sizes["float"] * n, 1), self.dtype),
                  "int": np.zeros(max(sizes["int"] * n, 1), np.int64)}
        views = {b.name: b.view(arenas[b.kind], n) for b in buffers}
        for k in self.program.params:
            views[f"p_{_ident(k)}"] = self.pviews[k]
            views[f"gp_{_ident(k)}"] = self.gviews[k]
        for k, packed in self.packed.items():
            views[f"q_{_ident(k)}"] = packed
        views[STREAM_WORDS] = np.zeros(3, np.uint64)     # see _set_stream
        return views

    def _buffers(self, mode, batch, part=0, n=None):
        n = len(next(iter(batch.values()))) if n is None else n
        key = (mode, n, part)
        views = self.bound.get(key)
        if views is None:
            self.bound = {k: v for k, v in self.bound.items() if k[::2] != (mode, part)}
            views = self.bound[key] = self._views(mode, n)
            if part:                    # the second half's gradients go to their own array
                for k in self.program.params:
                    views[f"gp_{_ident(k)}"] = self.second_gviews[k]
        if self.state:
            self._bind_state(views)
        names = self.names
        for name, arr in batch.items():
            views[names[name]] = arr
        return views

    def _bind_state(self, views):
        """Point the drivers' state names (batchnorm's running statistics) at self.state."""
        for layer, arrays in self.state.items():
            for sname, arr in arrays.items():
                views[f"st_{_ident(layer)}_{sname}"] = arr

    def _sync(self, arrays):
        """Copy in any parameter a user replaced with a new array."""
        if len(arrays) == len(self.pviews) and all(map(is_, arrays.values(), self.pview_list)):
            return                          # the usual case, at C speed (0.3 us, not 0.9)
        for k, v in arrays.items():
            if v is not self.pviews[k]:
                self.pviews[k][...] = v
                arrays[k] = self.pviews[k]

    # The modes a first run compiles: training goes on to evaluate and predict.
    _COMPILES = {"train": ("train", "evaluate", "predict"), "evaluate": ("evaluate", "predict"),
                 "predict": ("predict",)}

    def prepare(self, mode, state):
        """Compile, before their first call, the kernels of `mode` and of the modes that
        usually follow it, on two cores where there are two (see compiler.py)."""
        if mode in self.compiled:
            return
        self.state = state
        calls = []
        for m in self._COMPILES[mode]:
            if m in self.compiled:
                continue
            self.compiled.add(m)
            views = self._views(m, 1)
            for name, inp in self.program.net.inputs.items():
                dtype = self.dtype if inp.dtype.startswith("float") else np.dtype(inp.dtype)
                views[self.names[name]] = np.zeros((1,) + tuple(inp.shape), dtype)
            self._bind_state(views)
            compiler.record(getattr(self.module, m), views, calls)
            if m == "train" and getattr(self, "opt", None) is not None:
                kernel, args = self._update_call(self.opt, 0)
                task = self._team_task(kernel, args)
                if task is None:
                    compiler.Recorder(kernel, calls)(*args)
                else:
                    calls.append((task, ()))
            if m == "train" and self._splits(m):
                compiler.Recorder(self.optim.mean_of_halves, calls)(
                    self.flat_grads, self.flat_grads, 0.5, 0.5)
            if self._splits(m):
                for kernel, args in parallel.typical_calls():
                    compiler.Recorder(kernel, calls)(*args)
            if m == "train" and len(self.reg_start):
                compiler.Recorder(self.optim.regularize, calls)(
                    self.flat_params, self.flat_grads, self.reg_start, self.reg_end,
                    self.reg_l1, self.reg_l2)
        # the range check of integer inputs only where the batch has some: predict reads no
        # labels (one kernel less to compile the first time)
        net = self.program.net
        read = net.feature_inputs if mode == "predict" else net.inputs
        integers = any(not net.inputs[k].dtype.startswith("float") for k in read)
        for kernel, args in self.check.typical_calls(self.dtype, integers):
            compiler.Recorder(kernel, calls)(*args)
        if calls:
            self.compile_report = compiler.compile_calls(
                calls, {self.module.__name__: self.path}, self.worker)
        elif self.worker is not None:
            self.worker.close()
        self.worker = None

    def _schedule(self, mode, batch):
        """The Schedule of this kind of run (scheduler.py), or None where the second
        core has nothing to do: one thread, or batches too small to split whose products
        MKL keeps on one thread anyway."""
        n = len(next(iter(batch.values())))
        if self.threads < 2 or n < 2 * SPLIT_MIN:
            self.wide = self.threads >= 2
            return None
        s = self.schedules.of((mode, n))
        self.wide = s.wide()
        return s

    def _run(self, mode, arrays, state, batch, training, seed):
        """(loss, {buffer name: array}) of one run of a driver over the batch."""
        if mode not in self.compiled:
            self.prepare(mode, state)
        self._sync(arrays)
        self.state = state
        n = len(next(iter(batch.values())))
        if n >= 2 * SPLIT_MIN and self._splits(mode):
            return self._run_halves(mode, batch, n, seed)
        views = self._buffers(mode, batch, 0, n)
        if seed is not None:
            _set_stream(views, seed, 0)
        if self.uses_reference[mode]:
            self.runtime.begin(arrays, state, training, seed)
        # BLAS threads: none beside ours where the driver runs kernels that call products
        # chunk by chunk (gemm_serial, which only MKL can keep on one thread). A wide run
        # sets both cores per thread (MKL), so that what another library sets globally
        # (torch.set_num_threads sets MKL's count too) does not reach us.
        narrow = not self.wide or (not self.blas.PER_THREAD and self._chunked(mode))
        self.blas.set_threads(1 if narrow else self.threads)
        loss = self._driver(mode, batch, views)(views, self.runtime)
        return loss, views

    def _chunked(self, mode) -> bool:
        """Does `mode`'s driver call the kernels that multiply chunk by chunk?"""
        driver = self.gen.drivers[mode]
        return any(f"{m}." in driver for m in GEMM_MODULES)

    def _driver(self, mode, batch, views):
        """The driver of `mode`; from its second run on, its direct form when it has one
        and the batch fits it (fast_path.py: kernels called without numba's dispatcher,
        ~2.5 us less in a LeNet-5 predict). Modes that run reference rules or whose layers
        keep state always go through the dispatchers."""
        if mode in self.direct:
            direct = self.direct[mode]
            return direct.driver if direct is not None and direct.fits(batch) else \
                getattr(self.module, mode)
        driver = getattr(self.module, mode)
        if mode in self.compiled and mode in self.ran:
            self.direct[mode] = None if self.uses_reference[mode] or self.program.state \
                else fast_path.direct(driver, views, batch)
        self.ran.add(mode)
        return driver

    # ------------------------------------------------------------------ two threads
    def _splits(self, mode) -> bool:
        """Does `mode` run as two halves of the batch, one per core? When it pays and is
        exact. It pays for drivers that run convolution or recurrent kernels, whose loops
        keep to one core (2-core VM, one thread -> two: LeNet-5 train step at batch 64
        3.0 -> 1.66 ms, predict at 256 5.2 -> 2.7 ms; LSTM predict at 256 10.4 -> 6.6 ms,
        train step at 32 5.1 -> 3.2-4.4 ms: the per-step products of 16 rows each on one
        thread beat MKL's two threads on 32 rows). Networks of dense layers already keep
        both cores busy in MKL, and on the development VM two one-thread products at once
        ran no faster than one after the other (128x784x128, 20 of each: 8.9 ms together,
        4.0 ms for one thread's 20 alone). It is exact when MKL can be told to stay on the
        calling thread, the driver calls compiled kernels only (the reference rules are not
        thread-safe), no layer keeps state (batchnorm's statistics would be of the half;
        dropout's and gaussian_noise's random numbers are not: each value's is drawn by its
        index in the whole batch, see _set_stream), every loss is a mean over the batch, and
        what is read after a run (outputs, loss inputs) is laid out sample by sample, so
        that the halves' values join along the first axis."""
        if mode not in self.split_modes:
            g, prog, driver = self.program.graph, self.program, self.gen.drivers[mode]
            layouts = {b.name: b.layout for b in self.gen.plans[mode][0]}
            self.split_modes[mode] = (
                self.threads >= 2 and not prog.state
                and all(layouts.get(name, "batch") == "batch" for name in self.read_after)
                and ("_conv." in driver or "_rec." in driver)
                and not self.uses_reference[mode]
                and all(g.nodes[l]["attrs"].get("reduction", "mean") == "mean"
                        for l in prog.losses))
        return self.split_modes[mode]

    def _run_halves(self, mode, batch, n, seed):
        """The driver on both halves of the batch at once, on this thread and on a second
        one, each with its own arena (and, in training, its own gradients), BLAS on the
        calling thread only. The losses and gradients are means over each half: weighted
        by the halves' sizes they make the mean over the batch. Returns the loss and the
        values read after a run (outputs, loss inputs), joined along the batch."""
        half = n // 2
        if self.second_grads is None:
            self.second_grads = np.zeros_like(self.flat_grads)
            self.second_gviews = {k: self.second_grads[a:b].reshape(self.pviews[k].shape)
                                  for k, (a, b) in self.segments.items()}
        first = {k: v[:half] for k, v in batch.items()}
        views0 = self._buffers(mode, first, 0)
        views1 = self._buffers(mode, {k: v[half:] for k, v in batch.items()}, 1)
        if seed is not None:
            _set_stream(views0, seed, 0)
            _set_stream(views1, seed, half)
        driver = self._driver(mode, first, views0)

        def run(views):
            self.blas.set_threads(1)
            return driver(views, self.runtime)

        if self.wide:
            loss0, loss1 = parallel.second().run_beside(run, views1, lambda: run(views0))
        else:                           # a busy machine: the same halves, one after the other
            loss0, loss1 = run(views0), run(views1)
        w0, w1 = half / n, (n - half) / n
        if mode == "train":
            self.optim.mean_of_halves(self.flat_grads, self.second_grads, w0, w1)
        joined = {name: np.concatenate([views0[name], views1[name]])
                  for name in self.read_after if name in views0}
        return w0 * loss0 + w1 * loss1, joined

    def _values(self, views, nodes):
        names = self.names
        return {n: views[names[n]] for n in nodes if names[n] in views}

    def _refuse_unfit(self, mode, batch):
        """The DataError for an input that `mode`'s kernels check, if one is not finite."""
        for name in self.checks_finite[mode]:
            refuse_non_finite(self.program.net, name, batch[name])

    def _backprop(self, arrays, state, batch, seed):
        loss, views = self._run("train", arrays, state, batch, True, seed)
        if not math.isfinite(loss):     # the loss of a batch with NaN in an input is NaN
            self._refuse_unfit("train", batch)
        for g in self.unreached:
            g[...] = 0
        if len(self.reg_start):
            loss += self.optim.regularize(self.flat_params, self.flat_grads, self.reg_start,
                                     self.reg_end, self.reg_l1, self.reg_l2)
        return loss, views

    def gradients(self, arrays, state, batch, seed):
        self._schedule("train", batch)
        loss, _ = self._backprop(arrays, state, batch, seed)
        return loss, {k: np.array(self.gviews[k]) for k in self.trainable}

    def train_step(self, arrays, state, opt, opt_state, batch, t, seed):
        schedule, start = self._schedule("train", batch), perf_counter()
        if self.uses_reference["train"]:    # numpy's rules may overflow; kernels never warn
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, views = self._backprop(arrays, state, batch, seed)
        else:
            loss, views = self._backprop(arrays, state, batch, seed)
        if math.isfinite(loss):
            self._update(opt, t)                  # Model.set_optimizer always adopts `opt`
        if schedule is not None:
            schedule.record(self.wide, perf_counter() - start)
        return loss, self._values(views, self.loss_inputs)

    def evaluate(self, arrays, state, batch):
        schedule, start = self._schedule("evaluate", batch), perf_counter()
        loss, views = self._run("evaluate", arrays, state, batch, False, None)
        if schedule is not None:
            schedule.record(self.wide, perf_counter() - start)
        loss += optimizers.penalty(arrays, self.program.params)
        return loss, self._values(views, self.loss_inputs)

    def predict(self, arrays, state, batch):
        schedule, start = self._schedule("predict", batch), perf_counter()
        unfit, views = self._run("predict", arrays, state, batch, False, None)
        if schedule is not None:
            schedule.record(self.wide, perf_counter() - start)
        if unfit:       # NaN or infinity came out of a layer that reads an input: which?
            self._refuse_unfit("predict", batch)
        if len(self.output_buffers) == 1:   # the usual case, without a comprehension's frame
            name, buffer = self.output_buffers[0]
            self._arm_quick(batch, views)
            return {name: views[buffer].copy()}
        return {name: views[buffer].copy() for name, buffer in self.output_buffers}

    # ------------------------------------------------------------------ quick predict
    def _arm_quick(self, batch, views):
        """After a predict that ran the direct driver on the views of one batch size, let
        quick_predict repeat it for another batch of that size. Only for one input, which
        the kernels check for NaN and infinity on the way, declared in the model's dtype
        (no cast), and one output, on one thread, in batches too small for the second core."""
        direct = self.direct.get("predict")
        if len(batch) != 1 or direct is None:
            return
        (name, arr), = batch.items()
        n = len(arr)
        # batches the schedule chooses one or two cores for go its way (scheduler.py)
        if (n >= 2 * SPLIT_MIN and self.threads >= 2) \
                or name not in self.checks_finite["predict"]:
            return
        inp = self.program.net.inputs[name]
        if np.dtype(inp.dtype) != self.dtype or not direct.fits(batch) \
                or views is not self.bound.get(("predict", n, 0)):
            return
        self.quick = (name, (n,) + tuple(inp.shape), arr.dtype, views, self.names[name],
                      direct, self.output_buffers[0][1])

    quick = None

    def quick_predict(self, arrays, data, most: int):
        """The single output for `data` (one array, or {input: array}) when it is exactly
        what the last predict took (dtype, shape and batch size, a C array), holds at most
        `most` samples, and nothing else has changed (the parameters' arrays, the direct
        driver); else None, and the caller takes the usual way. Skips the checks and lookups
        that a repeated call need not make again: a batch-1 predict of the MLP 784-128-64-10
        took 10.6 us this way against 13.4 us (2-core development VM, medians)."""
        quick = self.quick
        if quick is None:
            return None
        name, shape, dtype, views, key, direct, buffer = quick
        arr = data if type(data) is np.ndarray else \
            data.get(name) if type(data) is dict and len(data) == 1 else None
        if type(arr) is not np.ndarray or arr.shape != shape or arr.dtype is not dtype \
                or shape[0] > most or not arr.flags.carray \
                or self.direct.get("predict") is not direct or len(arrays) != len(self.pviews) \
                or not all(map(is_, arrays.values(), self.pview_list)):
            return None
        views[key] = arr
        if direct.driver(views, self.runtime):
            return None             # NaN or infinity: the usual way says where
        return views[buffer].copy()


def _set_stream(views, seed, first):
    """Write a training run's stream words, which the kernels of dropout and gaussian_noise
    draw their random numbers with (site.Site.stream, nngraph/random_stream.py): the
    model seed (mod 2^64) and the step, as the reference backend seeds its generators with
    them, and the index in the whole batch of the run's first sample (0, or a second half's
    first), from which the kernels count."""
    views[STREAM_WORDS][:] = [w % 2 ** 64 for w in seed] + [first]


class _Reference:
    """`R` in generated drivers: runs reference rules for groups without a CPU rule, with
    the random streams the reference backend would use."""

    def __init__(self, program):
        self.program, self.graph = program, program.graph
        self.rng_index = {n: i for i, n in enumerate(program.eval_order(program.losses))}

    def begin(self, arrays, state, training, seed):
        self.arrays, self.state, self.training, self.seed = arrays, state, training, seed
        self.contexts, self.loss_values = {}, {}

    def _params(self, d):
        return {p: self.arrays[k] for p, k in d["params"].items()}

    def forward(self, n, xs, out):
        d = self.graph.nodes[n]
        rng = (np.random.default_rng(self.seed + [self.rng_index[n]])
               if self.training and n in self.rng_index else None)
        ctx = RunContext(training=self.training, rng=rng,
                         state=self.state.setdefault(d["layer"], {}))
        out[...] = d["op"].forward(ctx, d["attrs"], xs, self._params(d))
        self.contexts[n] = ctx

    def loss(self, n, xs):
        d = self.graph.nodes[n]
        ctx = RunContext(training=self.training)
        value = d["op"].forward(ctx, d["attrs"], xs, {})
        self.contexts[n], self.loss_values[n] = ctx, value
        return float(value)

    def backward(self, n, xs, y, gy, targets, pgrads):
        d = self.graph.nodes[n]
        if d["kind"] == "loss":
            y = self.loss_values[n]
            gy = np.asarray(d["attrs"]["weight"], dtype=xs[0].dtype)
        gxs, gp = d["op"].backward(self.contexts[n], d["attrs"], xs, self._params(d), y, gy)
        for target, g in zip(targets, gxs):
            if target is not None:
                target[...] = g
        for p, target in pgrads.items():
            target[...] = gp[p]
