"""What every backend's executor gives a Model, in one place.

A Model calls the runs (`predict`, `evaluate`, `train_step`, `gradients`) and the hooks
below; a backend overrides what it does differently. The defaults are those of a backend
that compiles nothing and keeps parameters as the Model gives them (the reference
backend): nothing to prepare, parameters and optimizer state kept as they are, nothing to
pack, no quick path for a repeated predict.
"""
from __future__ import annotations


class Executor:
    name = "?"
    first_time = False          # whether prepare() will compile this network for the first time
    fused_groups = 0            # how many fused groups its code runs (the CLI's compile line)
    checks_finite: dict = {}    # {mode: inputs whose NaN/infinity its kernels note on the way}
    compile_report = None       # what the last prepare() compiled, where (cpu: compiler.py)
    device_index = None         # the GPU it runs on (cuda), else None
    reduce = None               # data-parallel training (nngraph/dist.py): called with the
                                # gradients and the loss between backprop and the update;
                                # it replaces them with the whole batch's

    def update_only(self, arrays, opt, opt_state, t) -> float:
        """A data-parallel step in which this rank holds no sample: it adds zeros to the
        others' gradients and makes the same update; returns the batch's loss."""
        raise NotImplementedError

    def prepare(self, mode: str, state: dict) -> None:
        """Get ready to run `mode` (compile its code) before its first run."""

    def prepared(self, mode: str) -> bool:
        """Has `mode` been prepared already (or does it need no preparing)?"""
        return True

    def stage(self, batch: dict) -> None:
        """`batch` is the next training batch: a backend that copies batches to a device
        may start copying it now, while the current step computes (fit calls this)."""

    def adopt(self, params: dict) -> dict:
        """The parameters the Model keeps: `params`, or views into the backend's storage."""
        return params

    def adopt_optimizer(self, opt, state: dict) -> dict:
        """The optimizer state the Model keeps (as adopt, for optimizer `opt`)."""
        return state

    def pack(self) -> None:
        """A frozen copy's parameters are final: lay them out for predict (or not)."""

    def quick_predict(self, arrays: dict, data, most: int):
        """The output of a predict that repeats the last one exactly, or None."""
        return None

    # the runs, every backend's own
    def predict(self, arrays: dict, state: dict, batch: dict) -> dict:
        raise NotImplementedError

    def evaluate(self, arrays: dict, state: dict, batch: dict):
        raise NotImplementedError

    def train_step(self, arrays, state, opt, opt_state, batch, t, seed):
        raise NotImplementedError

    def gradients(self, arrays, state, batch, seed):
        raise NotImplementedError
