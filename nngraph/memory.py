"""What a model will need in memory, estimated from the shapes before anything is allocated.

`nngraph check` accepts any network whose tensors are each under the hard limits of shape
inference; whether it fits this machine is a question for compile time. A model holds its
parameters, their gradients and the optimizer's state (one or two arrays per parameter), and
a training step keeps every activation and its gradient for a batch. When that exceeds the
limit, compile refuses with a located error naming the layer that needs the most:

    big.yaml:9:5: error[E031]: layer 'fc' (dense): training needs about 37.3 GiB ...

The limit is NNGRAPH_MEMORY_LIMIT (bytes, or with a unit: 12GiB, 800MB; 'off' for none), else
half of this machine's memory (or of the cgroup's limit, in a container). Half, because the
estimate leaves out the data, the compiler and the copies a backend makes.
"""
from __future__ import annotations

import math
import os
import re

import numpy as np

from .errors import Diagnostic, NNGraphError, SpecError
from .optimizers import Optimizer
from .summary import human_bytes

ENV = "NNGRAPH_MEMORY_LIMIT"
UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
         "t": 1e12, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def physical_memory() -> int | None:
    """Bytes of memory this process may use: RAM, or less where a cgroup says so."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and (total is None or int(text) < total):
            total = int(text)
    return total


def memory_limit() -> tuple[int | None, str]:
    """(bytes or None for no limit, where the number comes from)."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        if raw.lower() in ("off", "none", "0"):
            return None, f"{ENV}={raw}"
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)", raw)
        if not m or m.group(2).lower() not in UNITS:
            raise NNGraphError(f"{ENV}={raw!r}: expected a size such as 8GiB, 500MB or 4e9, "
                               "or 'off'")
        return int(float(m.group(1)) * UNITS[m.group(2).lower()]), f"{ENV}={raw}"
    total = physical_memory()
    if total is None:
        return None, "unknown"
    return total // 2, f"half of this machine's {human_bytes(total)}; set {ENV} to change it"


def estimate(net, dtype="float32", batch_size: int | None = None) -> dict:
    """{layer: bytes} a training step of `net` needs: parameters, gradients and optimizer
    state of each layer, and its output and that output's gradient for one batch."""
    item = np.dtype(dtype).itemsize
    batch = int(batch_size or net.train.get("batch_size", 32))
    slots = len(Optimizer(net.train.get("optimizer")).slots)
    need = {}
    for p in net.param_table().values():
        copies = 2 + slots if p.trainable else 1
        need[p.layer] = need.get(p.layer, 0) + math.prod(p.spec.shape) * item * copies
    for name in net.order():
        d = net.node(name)
        if d["kind"] == "loss" or not d.get("shape"):
            continue
        size = math.prod(d["shape"]) * (8 if d["kind"] == "input" else item)
        need[name] = need.get(name, 0) + size * batch * 2
    return need


def check_memory(net, dtype="float32") -> None:
    """Raise SpecError, at the layer that needs the most, when `net` would not fit."""
    limit, why = memory_limit()
    if limit is None:
        return
    need = estimate(net, dtype)
    total = sum(need.values())
    if total <= limit:
        return
    worst = max(need, key=need.get)
    d = net.node(worst)
    line, col = d.get("pos") or (1, 1)
    what = f"input '{worst}'" if d["kind"] == "input" else f"layer '{worst}' ({d['op'].name})"
    params = sum(math.prod(s.shape) for s in d.get("params", {}).values())
    own = f"{params:,} parameters, " if params else ""
    msg = (f"{what}: training needs about {human_bytes(total)} ({total:,} B) in {dtype}, more "
           f"than the memory limit of {human_bytes(limit)} ({why}); this layer alone needs "
           f"{human_bytes(need[worst])} ({own}with gradients, optimizer state and its "
           f"activations for a batch of {int(net.train.get('batch_size', 32))})")
    raise SpecError([Diagnostic(net.file, line, col, "E031", msg)])
