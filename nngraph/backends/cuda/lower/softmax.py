"""softmax and log_softmax layers: the CPU's rules themselves (backends/cpu/lower/
softmax.py), registered here: they call `_softmax.<op>_forward/_backward` on (rows,
classes) views, which kernels/cuda/softmax.py provides with the same arguments, a block
per row on the device."""
from __future__ import annotations

from ...cpu.lower import softmax as _cpu
from . import lowers

lowers("softmax", "log_softmax", kind="forward",
       calls=("_softmax.softmax_forward", "_softmax.log_softmax_forward"))(
    _cpu.softmax_forward)
lowers("softmax", "log_softmax", kind="backward",
       calls=("_softmax.softmax_backward", "_softmax.log_softmax_backward"))(
    _cpu.softmax_backward)
