"""The optimizer step of the CPU backend: every optimizer slot of all parameters in one flat
array, as the parameters are, so that the update is one fused pass (kernels/cpu/optim.py),
on MKL's own threads where that pays."""
from __future__ import annotations

import numpy as np

from ... import optimizers

TEAM_MIN = 40_000
"""The optimizer update runs on MKL's threads from this many parameters on (see _team_task):
below, waking the team costs more than the update."""


class FlatUpdate:
    """CPUExecutor's optimizer step (a mixin: it reads the executor's flat parameters,
    gradients, segments and threads)."""

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
