"""The reference backend: a plain-numpy interpreter of a Program.

It runs each node's numpy rules one after another, exactly as the graph says. It is slow and
obviously correct: the oracle every fused backend is tested against, never the product path.
"""
from __future__ import annotations

import numpy as np

from .. import optimizers
from ..ir import Grad, GradNode
from ..ops.base import RunContext
from .base import Executor


class ReferenceExecutor(Executor):
    name = "reference"

    def __init__(self, program, dtype):
        self.program = program
        self.dtype = np.dtype(dtype)
        self.g = program.graph

    # ------------------------------------------------------------------ forward
    def forward(self, arrays, state, batch, targets, training, seed):
        """Values of every node needed for `targets`, plus the contexts backward needs."""
        values = dict(batch)
        contexts = {}
        for i, n in enumerate(self.program.eval_order(targets)):
            d = self.g.node(n)
            rng = np.random.default_rng(seed + [i]) if training else None
            ctx = RunContext(training=training, rng=rng, state=state.setdefault(d.layer, {}))
            p = {pname: arrays[key] for pname, key in d.params.items()}
            values[n] = d.op.forward(ctx, d.attrs, [values[x] for x in d.inputs], p)
            contexts[n] = ctx
        return values, contexts

    def loss_value(self, values) -> float:
        return float(sum(self.g.node(l).attrs["weight"] * float(values[l])
                         for l in self.program.losses if l in values))

    def predict(self, arrays, state, batch) -> dict:
        outs = self.program.outputs
        values, _ = self.forward(arrays, state, batch, list(outs.values()), False, None)
        return {name: values[node] for name, node in outs.items()}

    def evaluate(self, arrays, state, batch) -> tuple[float, dict]:
        targets = list(self.program.losses) + list(self.program.outputs.values())
        values, _ = self.forward(arrays, state, batch, targets, False, None)
        loss = self.loss_value(values) + optimizers.penalty(arrays, self.program.params)
        return loss, values

    # ------------------------------------------------------------------ backward
    def gradients(self, arrays, state, batch, seed) -> tuple[float, dict]:
        """(total loss, {param key: gradient}) for one batch in training mode."""
        loss, grads, _ = self._backprop(arrays, state, batch, seed)
        return loss, grads

    def _backprop(self, arrays, state, batch, seed):
        prog = self.program
        roots = [b.of for b in prog.backward
                 if isinstance(b, Grad) and self.g.node(b).seed is not None]
        # every loss counts in the total, one whose prediction gets no gradient too (a loss
        # on a network input)
        values, contexts = self.forward(arrays, state, batch, roots + list(prog.losses), True,
                                        seed)
        grads_of = {}                          # node -> gradient of its output
        param_grads = {}
        for b in prog.backward:
            bd = self.g.node(b)
            n = b.of
            if isinstance(bd, GradNode):
                if bd.seed == "ones":
                    grads_of[n] = np.ones_like(values[n])
                elif bd.seed is not None:
                    grads_of[n] = np.asarray(bd.seed, dtype=self.dtype)
                continue
            d = self.g.node(n)
            p = {pname: arrays[key] for pname, key in d.params.items()}
            xs = [values[x] for x in d.inputs]
            gxs, gp = d.op.backward(contexts[n], d.attrs, xs, p, values[n], grads_of[n])
            for j in bd.inputs:
                src = d.inputs[j]
                grads_of[src] = grads_of[src] + gxs[j] if src in grads_of else gxs[j]
            for pname, key in bd.params.items():     # a borrowed parameter may get several
                g = gp[pname]
                param_grads[key] = param_grads[key] + g if key in param_grads else g
        for name in prog.net.inputs:
            if Grad(name) in self.g and name in grads_of:
                param_grads[name] = grads_of[name]
        loss = self.loss_value(values)
        loss += optimizers.penalty(arrays, prog.params, param_grads)
        return loss, param_grads, values

    def train_step(self, arrays, state, opt, opt_state, batch, t, seed):
        """One update; returns (loss, forward values). No update when the loss is not finite
        (the caller reports it, so numpy's overflow warnings would only be noise)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss, grads, values = self._backprop(arrays, state, batch, seed)
        if self.reduce is not None:      # every rank sends every trainable parameter's
            grads = {k: np.array(grads[k], dtype=self.dtype) if k in grads     # gradient
                     else np.zeros_like(arrays[k], dtype=self.dtype)
                     for k in self.program.trainable}
            loss = self.reduce(grads, loss)
        if np.isfinite(loss):
            opt.update(arrays, grads, opt_state, self.program.params, t)
        return loss, values

    def update_only(self, arrays, opt, opt_state, t):
        grads = {k: np.zeros_like(arrays[k], dtype=self.dtype) for k in self.program.trainable}
        loss = self.reduce(grads, 0.0)
        if np.isfinite(loss):
            opt.update(arrays, grads, opt_state, self.program.params, t)
        return loss
