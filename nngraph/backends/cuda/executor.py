"""CUDAExecutor: runs the generated CUDA module's drivers on device arrays.

This first form keeps the Model's parameters on the host, as the truth between steps: a
run copies them into their device arrays, the batch in and, after the run, what is read
(outputs, loss inputs, gradients) out; the optimizer steps on the host. The flat device
parameter buffer with kernels/cuda/optim.py's one-launch update replaces that next
(docs/cuda.md)."""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ... import optimizers
from ...ir import STREAM_WORDS, Ref, Space
from ...passes.plan_memory import arena_views
from ..base import Executor
from ..cpu.module import call_driver, load_module
from .codegen import CUDACodegen
from .runtime import DeviceReference


class CUDAExecutor(Executor):
    name = "cuda"

    def __init__(self, program, dtype, device: str):
        self.program, self.dtype, self.device = program, np.dtype(dtype), device
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
        infos = program.params
        self.trainable = [k for k, p in infos.items() if p.trainable]
        self.dparams = {k: cuda.to_device(np.zeros(p.spec.shape, self.dtype))
                        for k, p in infos.items()}
        self.dgrads = {k: cuda.to_device(np.zeros(p.spec.shape, self.dtype))
                       for k, p in infos.items()}
        written = {r.key for r in self.gen.per_mode["train"].uses
                   if r.space == Space.PARAM_GRAD}
        self.unreached = [k for k in self.trainable if k not in written]
        self.uses_reference = {m: self.gen.uses_reference(m) for m in self.gen.drivers}
        self.bound = {}

    def _views(self, mode, n):
        """Views of `mode`'s device arena at batch size n (kept for the next run of that
        size), and the parameters' and gradients' device arrays."""
        views = self.bound.get((mode, n))
        if views is None:
            views = arena_views(*self.gen.plans[mode], n, self.dtype, cuda.device_array)
            for k in self.program.params:
                views[Ref(Space.PARAM, k).name] = self.dparams[k]
                views[Ref(Space.PARAM_GRAD, k).name] = self.dgrads[k]
            views[STREAM_WORDS.name] = cuda.to_device(np.zeros(3, np.uint64))
            self.bound = {key: v for key, v in self.bound.items() if key[0] != mode}
            self.bound[mode, n] = views
        return views

    def _run(self, mode, arrays, state, batch, training, seed):
        for k, d in self.dparams.items():
            d.copy_to_device(np.ascontiguousarray(arrays[k], self.dtype))
        views = self._views(mode, len(next(iter(batch.values()))))
        for name, arr in batch.items():
            views[self.names[name]] = cuda.to_device(np.ascontiguousarray(arr))
        if self.uses_reference[mode]:
            self.runtime.begin(arrays, state, training, seed)
        loss = call_driver(getattr(self.module, mode), views, self.runtime)
        return loss, views

    def _values(self, views, nodes) -> dict:
        return {n: views[self.names[n]].copy_to_host() for n in nodes
                if self.names[n] in views}

    def predict(self, arrays, state, batch):
        _, views = self._run("predict", arrays, state, batch, False, None)
        return {name: views[buffer].copy_to_host() for name, buffer in self.outputs}

    def evaluate(self, arrays, state, batch):
        loss, views = self._run("evaluate", arrays, state, batch, False, None)
        loss += optimizers.penalty(arrays, self.program.params)
        nodes = set(self.loss_inputs) | set(self.program.outputs.values())
        return loss, self._values(views, nodes)

    def _backprop(self, arrays, state, batch, seed):
        loss, views = self._run("train", arrays, state, batch, True, seed)
        grads = {k: (np.zeros_like(arrays[k], self.dtype) if k in self.unreached
                     else self.dgrads[k].copy_to_host()) for k in self.trainable}
        loss += optimizers.penalty(arrays, self.program.params, grads)
        return loss, grads, views

    def gradients(self, arrays, state, batch, seed):
        loss, grads, _ = self._backprop(arrays, state, batch, seed)
        return loss, grads

    def train_step(self, arrays, state, opt, opt_state, batch, t, seed):
        loss, grads, views = self._backprop(arrays, state, batch, seed)
        if math.isfinite(loss):
            opt.update(arrays, grads, opt_state, self.program.params, t)
        return loss, self._values(views, self.loss_inputs)
