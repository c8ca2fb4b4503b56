"""Drivers that call their compiled kernels straight, not through numba's dispatcher.

A jitted function called from Python goes through its dispatcher, which types every
argument and looks the types up among the compiled signatures before it calls the compiled
wrapper: ~0.4 us a call and more per argument, a sizeable part of a small network's batch-1
predict (LeNet-5's makes 7 calls, two of them with 16 arguments).

After a driver has run once, every kernel it calls is compiled for the arguments it got.
direct() records the driver's calls over the views of that run; a kernel whose calls all had
one signature, which it has been compiled for, is then called through that signature's
entry point (the wrapper that unboxes the arguments, as the dispatcher would call it).

The types stay those of the recording as long as the batch's arrays do: the driver's other
arguments are its arena's views, the parameters' views, empty placeholders and constants,
which keep their types whatever the batch size. The batch's arrays come from fit_input with
the declared dtype and rank, C-contiguous; Direct.fits() also asks that they be aligned and
writeable (numba types read-only and unaligned arrays apart) and of the recorded dtype and
rank. The executor uses a direct driver only where no reference rule runs and no layer
keeps state (running statistics, which users may replace with any array).
"""
from __future__ import annotations

from operator import is_

import numpy as np

from .compiler import Recorder, _Runtime, with_kernels
from .module import call_driver


class Direct:
    """A driver with straight calls, and the batch it may run on."""

    def __init__(self, driver, inputs: dict):
        self.driver = driver
        self.inputs = inputs                 # {batch key: (dtype, ndim)}

    def fits(self, batch: dict) -> bool:
        """Are the batch's arrays typed as those of the recording? (aligned, writeable,
        C-contiguous: numpy's CARRAY flag)."""
        inputs = self.inputs
        if len(batch) != len(inputs):
            return False
        for key, arr in batch.items():
            want = inputs.get(key)
            if want is None or not arr.flags.carray or arr.dtype != want[0] \
                    or arr.ndim != want[1]:
                return False
        return True


def direct(driver, views: dict, batch: dict) -> Direct | None:
    """The direct form of `driver` (which has just run over `views`, batch `batch`), or
    None when the batch's arrays are not plain C arrays or no kernel can be called
    straight."""
    if driver.__closure__ or not all(arr.flags.carray for arr in batch.values()):
        return None                     # (a wrapper, such as KernelProfile's)
    calls: list = []
    try:
        call_driver(with_kernels(driver, lambda d: Recorder(d, calls)), views, _Runtime())
    except Exception:           # noqa: BLE001 - only an accelerator: keep the dispatchers
        return None
    seen: dict = {}
    for dispatcher, signature in calls:
        seen.setdefault(dispatcher, set()).add(signature)
    entries = {}
    for dispatcher, signatures in seen.items():
        if len(signatures) == 1:
            compiled = dispatcher.overloads.get(next(iter(signatures)))
            if compiled is not None:
                entries[dispatcher] = compiled.entry_point
    if not entries:
        return None
    return Direct(with_kernels(driver, lambda d: entries.get(d, d)),
                  {key: (arr.dtype, arr.ndim) for key, arr in batch.items()})


class QuickPredict:
    """CPUExecutor's repeat of the last predict (a mixin: it reads the executor's direct
    drivers, views, inputs and parameters)."""

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
        if (n >= 2 * self.SPLIT_MIN and self.threads >= 2) \
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
        that a repeated call need not make again, a sizeable part of a small network's
        batch-1 predict."""
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
        if call_driver(direct.driver, views, self.runtime):
            return None             # NaN or infinity: the usual way says where
        return views[buffer].copy()
