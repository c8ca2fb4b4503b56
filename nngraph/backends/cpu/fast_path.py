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

from .compiler import Recorder, _Runtime, with_kernels


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
        with_kernels(driver, lambda d: Recorder(d, calls))(views, _Runtime())
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
