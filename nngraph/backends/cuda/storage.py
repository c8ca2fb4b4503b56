"""Flat device storage with a host mirror: what the CUDA backend hands the Model as its
parameters and optimizer state.

The device buffer is the truth while training runs: an optimizer step updates it in place
and nothing is copied back. The Model (and the user, through `model.params`) sees host
arrays, views of one flat host mirror: reading any of them first copies the whole buffer
back if the device is ahead (one transfer), and marks the mirror as possibly edited, so
the next run copies it to the device before it starts (one transfer). A loop of training
steps that reads nothing copies nothing; `m.params["W"][...] = w` before a step reaches
the step. An array kept from an earlier read is a copy of that moment: it neither sees
later steps nor, once a step has run, reaches the device (read `model.params` again)."""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numba import cuda


class FlatLayout:
    """Named arrays laid end to end in one flat buffer: {key: (start, end, shape)}."""

    def __init__(self, shapes: dict):
        self.segments, at = {}, 0
        for key, shape in shapes.items():
            size = math.prod(shape)
            self.segments[key] = (at, at + size, tuple(shape))
            at += size
        self.size = at

    def views(self, flat) -> dict:
        return {k: flat[a:b].reshape(shape) for k, (a, b, shape) in self.segments.items()}


class DeviceMirror(Mapping):
    """{key: host array} over a flat device buffer (see the module's docstring)."""

    def __init__(self, layout: FlatLayout, dtype):
        self.layout = layout
        self.host_flat = np.zeros(layout.size, dtype)
        self.device_flat = cuda.to_device(self.host_flat)
        self.host = layout.views(self.host_flat)
        self.device = layout.views(self.device_flat)
        self.device_ahead = False         # the device holds values the host has not seen
        self.host_touched = False         # the host arrays were handed out since the last push

    def __getitem__(self, key):
        self.pull()
        self.host_touched = True
        return self.host[key]

    def __iter__(self):
        return iter(self.host)

    def __len__(self):
        return len(self.host)

    def pull(self) -> None:
        """Copy the device buffer to the host mirror if the device is ahead."""
        if self.device_ahead:
            self.device_flat.copy_to_host(self.host_flat)
            self.device_ahead = False

    def push(self) -> None:
        """Copy the host mirror to the device if its arrays may have been edited."""
        if self.host_touched:
            self.device_flat.copy_to_device(self.host_flat)
            self.host_touched = False

    def changed_on_device(self) -> None:
        """A kernel wrote the device buffer: the host mirror is stale."""
        self.push()
        self.device_ahead = True
