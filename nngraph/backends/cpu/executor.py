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
from operator import is_
from time import perf_counter

import numpy as np

from ... import optimizers
from ...batch import refuse_non_finite
from ...ir import STREAM_WORDS, Ref, Space
from ...passes.plan_memory import arena_views
from .codegen import CPUCodegen
from .kernel_modules import calls_gemm, module_calls_gemm
from .module import call_driver, load_module, module_file
from .runtime import Reference, set_stream
from .update import FlatUpdate
from ..base import Executor
from . import compiler, fast_path, parallel, scheduler


_NOT_PACKED = np.zeros(0, np.uint8)     # a weight with no packed copy: gemm_packed calls gemm

SPLIT_MIN = 8
"""A batch runs as two halves on two threads from 2 * SPLIT_MIN samples on (see _splits):
below, handing half a batch to the second thread costs more than it saves."""

def threads(setting: str | None = None) -> int:
    """Threads a batch may run on: 1 with NNGRAPH_THREADS=1 or one usable core, else 2
    (whether a run takes the second core is then measured, see scheduler.py)."""
    return 1 if (setting or scheduler.setting()) == "one" else 2


class CPUExecutor(fast_path.QuickPredict, parallel.Halves, FlatUpdate, Executor):
    name = "cpu"
    SPLIT_MIN = SPLIT_MIN

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
        self.runtime = Reference(program)
        self.arenas, self.bound = {}, {}
        self._lay_out(program.params)
        g = program.graph
        self.loss_inputs = {i for l in program.losses for i in g.node(l).inputs}
        self.slots, self.team_updates = {}, {}
        self.state = {}
        self.compiled, self.compile_report = set(), None
        self.direct: dict = {}          # {mode: fast_path.Direct or None} (see _driver)
        self.ran: set = set()           # modes whose driver has run
        setting = scheduler.setting()
        self.threads, self.split_modes, self.second_grads = threads(setting), {}, None
        self.split_from: dict = {}      # {mode: the smallest batch that splits} (_splits)
        self.schedules = scheduler.Schedules(setting)
        self.wide = self.threads >= 2       # whether the run under way takes both cores
        self.names = {n: Ref(Space.VALUE, n).name for n in g if isinstance(n, str)}
        self.output_buffers = [(name, self.names[node]) for name, node in program.outputs.items()]
        self.uses_reference = {m: self.gen.uses_reference(m) for m in self.gen.drivers}
        self.uses_stream = {m: self.gen.uses_stream(m) for m in self.gen.drivers}
        # {mode: inputs that its kernels check for NaN and infinity on the way} (see
        # Site.check_input): the batch checks skip their own scan of them
        self.checks_finite = {m: frozenset(v) for m, v in self.gen.checked_inputs.items()}
        # what is read after a run: the outputs and what the losses compare
        self.read_after = sorted({self.names[n] for n in
                                  set(self.loss_inputs) | set(program.outputs.values())})
        # Gradients of trainable parameters that no loss reaches (an unused layer): the
        # train driver never writes them, so _backprop zeroes them before each step's
        # penalty gradient is added, which would otherwise pile up from step to step.
        train = self.gen.per_mode["train"].uses if "train" in self.gen.per_mode else {}
        self.unreached = [self.gviews[k] for k in self.trainable
                          if Ref(Space.PARAM_GRAD, k) not in train]

    def _lay_out(self, infos) -> None:
        """Parameters and their gradients each in one flat array, `pviews`/`gviews` the
        parameters' views into them, and per parameter its segment, learning-rate
        multiplier and regularization, which the flat update and penalty read."""
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

    @property
    def fused_groups(self) -> int:
        return len(self.gen.groups)

    def prepared(self, mode: str) -> bool:
        return mode in self.compiled

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

    # ------------------------------------------------------------------ running
    def _views(self, mode, n):
        """Views of a new arena for `mode` at batch size n, and of the parameters."""
        views = arena_views(*self.gen.plans[mode], n, self.dtype, np.zeros)
        for k in self.program.params:
            views[Ref(Space.PARAM, k).name] = self.pviews[k]
            views[Ref(Space.PARAM_GRAD, k).name] = self.gviews[k]
        for k, packed in self.packed.items():
            views[Ref(Space.PACKED, k).name] = packed
        views[STREAM_WORDS.name] = np.zeros(3, np.uint64)     # see runtime.set_stream
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
                    views[Ref(Space.PARAM_GRAD, k).name] = self.second_gviews[k]
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
                views[Ref(Space.STATE, f"{layer}.{sname}").name] = arr

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
        # numba types a read-only array apart, and a kernel whose other mode writes the slot
        # it takes (concat's gradient split) does not type with one: copy such inputs (a
        # slice of a dataset's cached, read-only arrays)
        batch = {k: v if v.flags.writeable else v.copy() for k, v in batch.items()}
        n = len(next(iter(batch.values())))
        if self.halves_for(mode, n):
            return self._run_halves(mode, batch, n, seed)
        views = self._buffers(mode, batch, 0, n)
        if seed is not None and self.uses_stream[mode]:
            set_stream(views, seed, 0)
        if self.uses_reference[mode]:
            self.runtime.begin(arrays, state, training, seed)
        # BLAS threads: none beside ours where the driver runs kernels that call products
        # chunk by chunk (gemm_serial, which only MKL can keep on one thread). A wide run
        # sets both cores per thread (MKL), so that what another library sets globally
        # (torch.set_num_threads sets MKL's count too) does not reach us.
        narrow = not self.wide or (not self.blas.PER_THREAD and self._chunked(mode))
        self.blas.set_threads(1 if narrow else self.threads)
        loss = call_driver(self._driver(mode, batch, views), views, self.runtime)
        return loss, views

    def _chunked(self, mode) -> bool:
        """Does `mode`'s driver call the kernels that multiply chunk by chunk?"""
        return any(module_calls_gemm(m) for m in self.gen.calls_modules(mode))

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
                else fast_path.direct(self._positional(mode), views, batch)
        self.ran.add(mode)
        return driver

    def _positional(self, mode):
        """Driver `mode` with every argument passed by position (CPUCodegen.positional),
        as the direct form needs: compiled entry points take no keywords."""
        source = self.gen.positional[mode]
        if source == self.gen.drivers[mode]:
            return getattr(self.module, mode)
        names = dict(vars(self.module))
        exec(compile(source, self.module.__file__, "exec"), names)      # noqa: S102
        return names[mode]

    # ------------------------------------------------------------------ two threads
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
        if self.reduce is not None:
            loss = self.reduce(self.flat_grads, loss)
        if math.isfinite(loss):
            self._update(opt, t)                  # Model.set_optimizer always adopts `opt`
        if schedule is not None:
            schedule.record(self.wide, perf_counter() - start)
        return loss, self._values(views, self.loss_inputs)

    def update_only(self, arrays, opt, opt_state, t):
        self.flat_grads[...] = 0
        loss = self.reduce(self.flat_grads, 0.0)
        if math.isfinite(loss):
            self._update(opt, t)
        return loss

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
