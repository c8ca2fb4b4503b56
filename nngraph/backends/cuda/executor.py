"""CUDAExecutor: runs the generated CUDA module's drivers on device arrays.

The parameters, their gradients and every optimizer slot each live in one flat device
buffer (storage.py), so a step is the driver's kernels and one optimizer launch
(kernels/cuda/optim.py) over the whole network, and the regularization penalty is one
more; the step copies the batch in and reads back the loss (and the penalty's total). The
Model holds DeviceMirrors of those buffers: host arrays synchronised only when someone
reads them. Layer state (batchnorm's running statistics) stays on the host as the truth
and is copied in and out around each run (run_state.py): a few values per channel."""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ... import optimizers
from ...ir import STREAM_WORDS, Ref, Space
from ...kernels.cuda import optim as _optim
from ...passes.plan_memory import arena_views
from ..base import Executor
from ..cpu.module import call_driver, load_module
from .codegen import CUDACodegen
from .run_state import bind_state, read_state, state_names, write_stream
from .runtime import DeviceReference
from .storage import DeviceMirror, FlatLayout


class CUDAExecutor(Executor):
    name = "cuda"

    def __init__(self, program, dtype, device: str, index: int = 0):
        self.program, self.dtype, self.device = program, np.dtype(dtype), device
        self.device_index = index           # the GPU's number (Model.freeze keeps it)
        self.gen = CUDACodegen(program, self.dtype)
        self.source = self.gen.source()
        self.module, self.path = load_module(f"{program.net.name}_{self.dtype.name}_cuda",
                                             self.source)
        self.fused_groups = len(self.gen.groups)
        self.runtime = DeviceReference(program)
        g = program.graph
        self.names = {n: Ref(Space.VALUE, n).name for n in g if isinstance(n, str)}
        self.outputs = [(name, self.names[node]) for name, node in program.outputs.items()]
        self.loss_inputs = {i for loss in program.losses for i in g.node(loss).inputs}
        self.layout = FlatLayout({k: p.spec.shape for k, p in program.params.items()})
        self.params = DeviceMirror(self.layout, self.dtype)
        self.grad_flat = cuda.to_device(np.zeros(self.layout.size, self.dtype))
        self.grads = self.layout.views(self.grad_flat)
        self._segments(program.params)
        self.slots = None                           # the optimizer's, from adopt_optimizer
        modes = self.gen.drivers
        self.uses_reference = {m: self.gen.uses_reference(m) for m in modes}
        self.uses_stream = {m: self.gen.uses_stream(m) for m in modes}
        self.state_names = {m: state_names(self.gen, m) for m in modes}
        self.bound = {}
        self.staging = Staging()

    def _segments(self, infos) -> None:
        """Per parameter: its segment of the flat buffers and learning-rate multiplier (0:
        frozen), the regularized segments with their l1/l2, and the trainable parameters
        that no loss reaches (their gradients are zeroed before the penalty's are added)."""
        seg = [self.layout.segments[k][:2] for k in infos]
        self.seg_start = cuda.to_device(np.array([a for a, _ in seg], np.int64))
        self.seg_end = cuda.to_device(np.array([b for _, b in seg], np.int64))
        self.seg_lr = cuda.to_device(np.array([p.lr_mult if p.trainable else 0.0
                                               for p in infos.values()], self.dtype))
        self.trainable = [k for k, p in infos.items() if p.trainable]
        reg = [k for k in self.trainable
               if infos[k].regularizer.get("l1") or infos[k].regularizer.get("l2")]
        self.reg = None if not reg else tuple(cuda.to_device(np.array(a)) for a in (
            [self.layout.segments[k][0] for k in reg], [self.layout.segments[k][1] for k in reg],
            [float(infos[k].regularizer.get("l1", 0.0)) for k in reg],
            [float(infos[k].regularizer.get("l2", 0.0)) for k in reg], np.zeros(len(reg))))
        self.max_norm = {k: infos[k].regularizer["max_norm"] for k in self.trainable
                         if "max_norm" in infos[k].regularizer}
        written = {r.key for r in self.gen.per_mode["train"].uses
                   if r.space == Space.PARAM_GRAD} if "train" in self.gen.per_mode else set()
        self.unreached = [k for k in self.trainable if k not in written]

    # ------------------------------------------------------------------ storage
    def adopt(self, params: dict) -> DeviceMirror:
        """The parameters as a DeviceMirror of the flat device buffer, holding `params`."""
        for k, v in params.items():
            self.params[k][...] = v
        return self.params

    def adopt_optimizer(self, opt, state: dict) -> DeviceMirror:
        """Each optimizer slot of all parameters in one flat device buffer (a DeviceMirror
        named like Optimizer.init_state's `key/slot`), holding `state`."""
        self.opt = opt
        shapes = {f"{k}/{slot}": self.layout.segments[k][2]
                  for slot in opt.slots for k in self.layout.segments}
        self.slots = DeviceMirror(FlatLayout(shapes), self.dtype)
        for k, v in state.items():
            self.slots[k][...] = v
        return self.slots

    def _slot_flat(self, slot):
        """Slot `slot` of every parameter as one flat device array (the segments' layout)."""
        first = next(iter(self.layout.segments))
        start = self.slots.layout.segments[f"{first}/{slot}"][0]
        return self.slots.device_flat[start:start + self.layout.size]

    def stage(self, batch: dict) -> None:
        self.staging.start(batch)

    # ------------------------------------------------------------------ running
    def _views(self, mode, n):
        """Views of `mode`'s device arena at batch size n (kept for the next run of that
        size), and the parameters' and gradients' device arrays."""
        views = self.bound.get((mode, n))
        if views is None:
            views = arena_views(*self.gen.plans[mode], n, self.dtype, cuda.device_array)
            for k in self.program.params:
                views[Ref(Space.PARAM, k).name] = self.params.device[k]
                views[Ref(Space.PARAM_GRAD, k).name] = self.grads[k]
            views[STREAM_WORDS.name] = cuda.to_device(np.zeros(3, np.uint64))
            self.bound = {key: v for key, v in self.bound.items() if key[0] != mode}
            self.bound[mode, n] = views
        return views

    def _run(self, mode, arrays, state, batch, training, seed):
        self._bring(arrays)
        views = self._views(mode, len(next(iter(batch.values()))))
        if not self.staging.take(batch, views, self.names):
            for name, arr in batch.items():
                _copy_in(views, self.names[name], np.ascontiguousarray(arr))
        if seed is not None and self.uses_stream[mode]:
            write_stream(views, seed)
        bound = bind_state(views, state, self.state_names[mode])
        if self.uses_reference[mode]:
            self.runtime.begin(self._host(arrays), state, training, seed)
        loss = call_driver(getattr(self.module, mode), views, self.runtime)
        if training:
            read_state(bound)
        return loss, views

    def _bring(self, arrays) -> None:
        """Make the device parameters hold `arrays`: the mirror's own values (copied in if
        they may have been edited), or another dict's (a frozen copy's, an oracle's)."""
        if arrays is self.params:
            self.params.push()
        else:
            for k, v in arrays.items():
                self.params[k][...] = v
            self.params.push()

    def _host(self, arrays) -> dict:
        """Host arrays of the parameters for the numpy rules of groups without a lowering
        (reading the mirror copies the device buffer back when it is ahead)."""
        if arrays is not self.params:
            return arrays
        self.params.pull()
        return self.params.host

    def _penalty(self, add_grad: bool) -> float:
        if self.reg is None:
            return 0.0
        return _optim.regularize(self.params.device_flat, self.grad_flat, *self.reg[:4],
                                 self.reg[4], add_grad)

    def predict(self, arrays, state, batch):
        _, views = self._run("predict", arrays, state, batch, False, None)
        return {name: views[buffer].copy_to_host() for name, buffer in self.outputs}

    def evaluate(self, arrays, state, batch):
        loss, views = self._run("evaluate", arrays, state, batch, False, None)
        loss += self._penalty(add_grad=False)
        nodes = set(self.loss_inputs) | set(self.program.outputs.values())
        return loss, DeviceValues(views, {n: self.names[n] for n in nodes})

    def _backprop(self, arrays, state, batch, seed):
        loss, views = self._run("train", arrays, state, batch, True, seed)
        for k in self.unreached:
            _optim.zero(self.grads[k].reshape(self.grads[k].size))
        return loss + self._penalty(add_grad=True), views

    def gradients(self, arrays, state, batch, seed):
        loss, _ = self._backprop(arrays, state, batch, seed)
        return loss, {k: self.grads[k].copy_to_host() for k in self.trainable}

    def train_step(self, arrays, state, opt, opt_state, batch, t, seed):
        loss, views = self._backprop(arrays, state, batch, seed)
        if math.isfinite(loss):
            self._update(opt, t)
        return loss, DeviceValues(views, {n: self.names[n] for n in self.loss_inputs})

    def _update(self, opt, t) -> None:
        """One launch of the optimizer over the flat buffers; max_norm on the host."""
        c, p, g = opt.config, self.params.device_flat, self.grad_flat
        self.slots.push()
        args = (self.seg_start, self.seg_end, self.seg_lr, opt.lr_at(t))
        if c["type"] == "sgd":
            v = self._slot_flat("v") if "v" in opt.slots else p
            _optim.sgd_update(p, g, v, *args, c["momentum"], c["nesterov"])
        elif c["type"] == "rmsprop":
            _optim.rmsprop_update(p, g, self._slot_flat("s"), *args, c["rho"], c["eps"])
        elif c["type"] == "adagrad":
            _optim.adagrad_update(p, g, self._slot_flat("s"), *args, c["eps"])
        else:
            _optim.adam_update(p, g, self._slot_flat("m"), self._slot_flat("v"), *args,
                               c["beta1"], c["beta2"], c["eps"], t)
        self.params.changed_on_device()
        self.slots.changed_on_device()
        if self.max_norm:       # rare (a constraint, not a penalty): on the host
            for k, limit in self.max_norm.items():
                optimizers.apply_max_norm(self.params[k], limit, self.params[k].shape)
            self.params.push()


def _copy_in(views, name, arr) -> None:
    """The batch's `arr` into its device array of the arena's run (the one of the last run
    of this mode and size, or a new one the first time: no allocation per step)."""
    dev = views.get(name)
    if dev is None or dev.shape != arr.shape or dev.dtype != arr.dtype:
        views[name] = cuda.to_device(arr)
    else:
        dev.copy_to_device(arr)


class Staging:
    """The next training batch's copy to the device, on a stream of its own, while the
    current step computes on the default one (Executor.stage; fit stages each next batch
    before it runs the current one, so two batches may be staged at once).

    Each staged batch has its own set of pinned host buffers (the copy engine reads
    page-locked memory directly, so the copy is asynchronous; a buffer is not refilled
    while its copy may still read it) and device arrays. The run that takes a batch waits
    for the copies, puts its device arrays into the arena's views, and the arrays they
    replace (the last step's: finished, a step ends by reading its loss back) join the sets
    the next copies reuse."""

    PENDING = 2

    def __init__(self):
        self.stream = None
        self.pending = []           # [(batch, {input: (pinned, device array)})], oldest first
        self.spare = []             # sets whose arrays no run reads

    def start(self, batch: dict) -> None:
        if self.stream is None:
            self.stream = cuda.stream()
        if len(self.pending) == self.PENDING:
            self.spare.append(self.pending.pop(0)[1])
        arrays = self.spare.pop() if self.spare else {}
        for name, arr in batch.items():
            arr = np.ascontiguousarray(arr)
            host, dev = arrays.get(name, (None, None))
            if host is None or host.shape != arr.shape or host.dtype != arr.dtype:
                host = cuda.pinned_array(arr.shape, arr.dtype)
            if dev is None or dev.shape != arr.shape or dev.dtype != arr.dtype:
                dev = cuda.device_array(arr.shape, arr.dtype)
            host[...] = arr
            dev.copy_to_device(host, stream=self.stream)
            arrays[name] = (host, dev)
        self.pending.append((batch, arrays))

    def take(self, batch: dict, views: dict, names: dict) -> bool:
        """Put the staged copy of `batch` into `views` (once the copies are done); False if
        `batch` was not staged."""
        at = next((i for i, (b, _) in enumerate(self.pending) if b is batch), None)
        if at is None:
            return False
        self.stream.synchronize()
        _, arrays = self.pending.pop(at)
        freed = {}
        for name, (host, dev) in arrays.items():
            key = names[name]
            previous = views.get(key)
            views[key] = dev
            freed[name] = (host, previous)     # the pinned buffer's copy is done too
        self.spare.append(freed)
        return True


class DeviceValues(dict):
    """{node: host array} of a run's values, each copied from the device when first read
    (the metrics read them; a step without metrics copies nothing but its loss). Read
    them before the next run, which reuses the arena."""

    def __init__(self, views, names: dict):
        super().__init__()
        self._views, self._names = views, names

    def __missing__(self, node):
        if node not in self._names or self._names[node] not in self._views:
            raise KeyError(node)
        value = self[node] = self._views[self._names[node]].copy_to_host()
        return value

    def __contains__(self, node):
        return node in self._names and self._names[node] in self._views

    def get(self, node, default=None):
        return self[node] if node in self else default
