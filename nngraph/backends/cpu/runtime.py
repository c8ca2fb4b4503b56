"""What generated drivers call besides kernels: `R`, the numpy reference rules of groups that
no lowering covers, and the stream words of a training run's random numbers."""
from __future__ import annotations

import numpy as np

from ...ops.base import RunContext
from ...ir import STREAM_WORDS


def set_stream(views, seed, first):
    """Write a training run's stream words, which the kernels of dropout and gaussian_noise
    draw their random numbers with (site.Site.stream, nngraph/random_stream.py): the
    model seed (mod 2^64) and the step, as the reference backend seeds its generators with
    them, and the index in the whole batch of the run's first sample (0, or a second half's
    first), from which the kernels count."""
    views[STREAM_WORDS.name][:] = [w % 2 ** 64 for w in seed] + [first]


class Reference:
    """`R` in generated drivers: runs reference rules for groups without a CPU rule, with
    the random streams the reference backend would use."""

    def __init__(self, program):
        self.program, self.graph = program, program.graph
        self.rng_index = {n: i for i, n in enumerate(program.eval_order(program.losses))}

    def begin(self, arrays, state, training, seed):
        self.arrays, self.state, self.training, self.seed = arrays, state, training, seed
        self.contexts, self.loss_values = {}, {}

    def _params(self, d):
        return {p: self.arrays[k] for p, k in d.params.items()}

    def forward(self, n, xs, out):
        d = self.graph.node(n)
        rng = (np.random.default_rng(self.seed + [self.rng_index[n]])
               if self.training and n in self.rng_index else None)
        ctx = RunContext(training=self.training, rng=rng,
                         state=self.state.setdefault(d.layer, {}))
        out[...] = d.op.forward(ctx, d.attrs, xs, self._params(d))
        self.contexts[n] = ctx

    def loss(self, n, xs):
        d = self.graph.node(n)
        # a loss may draw random numbers (contrastive divergence's Gibbs chain) and read
        # parameters it borrows (spec/borrow.py), as in the reference backend
        rng = (np.random.default_rng(self.seed + [self.rng_index[n]])
               if self.training and n in self.rng_index else None)
        ctx = RunContext(training=self.training, rng=rng,
                         state=self.state.setdefault(d.layer, {}))
        value = d.op.forward(ctx, d.attrs, xs, self._params(d))
        self.contexts[n], self.loss_values[n] = ctx, value
        return float(value)

    def backward(self, n, xs, y, gy, targets, pgrads):
        d = self.graph.node(n)
        if d.kind == "loss":
            y = self.loss_values[n]
            gy = np.asarray(d.attrs["weight"], dtype=xs[0].dtype)
        gxs, gp = d.op.backward(self.contexts[n], d.attrs, xs, self._params(d), y, gy)
        for target, g in zip(targets, gxs):
            if target is not None:
                target[...] = g
        for p, target in pgrads.items():
            target[...] = gp[p]
