"""`R` of the CUDA drivers: the numpy reference rules of groups without a CUDA lowering, run
on host copies of their device arrays (and their results copied back)."""
from __future__ import annotations

import numpy as np

from ..cpu.runtime import Reference


def _host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else a


class DeviceReference(Reference):
    def forward(self, n, xs, out):
        result = np.empty(out.shape, out.dtype)
        super().forward(n, [_host(x) for x in xs], result)
        out.copy_to_device(result)

    def loss(self, n, xs):
        return super().loss(n, [_host(x) for x in xs])

    def backward(self, n, xs, y, gy, targets, pgrads):
        host_t = [None if t is None else np.empty(t.shape, t.dtype) for t in targets]
        host_p = {p: np.empty(t.shape, t.dtype) for p, t in pgrads.items()}
        super().backward(n, [_host(x) for x in xs], None if y is None else _host(y),
                         None if gy is None else _host(gy), host_t, host_p)
        for t, h in zip(targets, host_t):
            if t is not None:
                t.copy_to_device(h)
        for p, t in pgrads.items():
            t.copy_to_device(host_p[p])
