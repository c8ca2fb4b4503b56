"""What a run of a CUDA driver needs on the device besides the batch and the parameters:

- the words of the run's random stream (dropout, gaussian_noise: lower/_noise.py), the model
  seed mod 2^64, the step and the index of the run's first sample in the batch (always 0
  here: the device runs a batch whole), written before each training run as the CPU
  executor writes them (backends/cpu/runtime.set_stream);
- the layer state the driver reads or moves (batchnorm's running statistics: lower/
  batchnorm.py), device arrays named as the driver's state arguments, refreshed from the
  host's state before each run and, after a training run, copied back into it: the host's
  arrays stay the truth (Model.state, saved, frozen, read by the other backends).

CUDAExecutor._run calls these (write_stream, bind_state, read_state)."""
from __future__ import annotations

import numpy as np

from ...ir import STREAM_WORDS, Ref, Space


def stream_words(seed, first: int = 0) -> np.ndarray:
    """The stream words of a run with seed [model seed, step] whose first sample has index
    `first` in the batch: uint64, each mod 2^64."""
    return np.array([int(w) % 2 ** 64 for w in seed] + [first], np.uint64)


def write_stream(views, seed, first: int = 0) -> None:
    """Write the run's stream words into the device array the drivers read them from."""
    views[STREAM_WORDS.name].copy_to_device(stream_words(seed, first))


def state_names(gen, mode) -> set:
    """The state arguments of driver `mode` ('s_bn1_running_mean', ...): those of the groups
    a lowering runs on the device (a group on host copies uses the host's state itself)."""
    return {r.name for r in gen.per_mode[mode].uses if r.space == Space.STATE}


def bind_state(views, state, names) -> list:
    """Put device copies of the layer state arrays named in `names` in `views` (kept there
    for the next run: only their values are copied each time); [(host array, device
    array)] for read_state."""
    from numba import cuda
    bound = []
    for layer, arrays in state.items():
        for key, host in arrays.items():
            name = Ref(Space.STATE, f"{layer}.{key}").name
            if name not in names:
                continue
            host_c = np.ascontiguousarray(host)
            dev = views.get(name)
            if dev is None or dev.shape != host.shape or dev.dtype != host.dtype:
                dev = views[name] = cuda.to_device(host_c)
            else:
                dev.copy_to_device(host_c)
            bound.append((host, dev))
    return bound


def read_state(bound) -> None:
    """Copy the state a training run moved back into the host's arrays, in place."""
    for host, dev in bound:
        host[...] = dev.copy_to_host()
