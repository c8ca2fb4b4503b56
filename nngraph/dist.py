"""Data-parallel training over MPI (mpi4py): `mpirun -n N nngraph train SPEC`.

Every rank compiles the same model from the same seed, so the parameters start equal. Each
global batch (the spec's batch_size, in the same shuffled order on every rank) is split as
evenly as possible, rank r taking samples [lo_r, hi_r); each rank computes the gradient of
its share, and one Allreduce over the flat gradient buffer, with the loss in one extra slot,
sums them weighted by share size / batch size. Every loss being a mean over its batch, that
weighted sum is exactly the gradient and the loss of the whole batch, regularisation
included (each rank adds the same penalty gradient, and the weights sum to 1). Every rank
then makes the same optimizer update, so the parameters stay equal without being sent. A
rank whose share of a small last batch is empty contributes zeros and updates all the same.

What differs from one process: batchnorm normalises each rank's share by that share's
statistics (as Horovod and PyTorch's DistributedDataParallel do), and dropout and noise draw
their masks per share, so those networks train alike but not to the same bits. Rank 0 alone
prints and writes model files; the others read the same files to resume.

The world is found from the launcher's environment (mpirun/mpiexec of MPICH, Open MPI or
Intel MPI, and Slurm's srun), so a script needs no change: `model.fit` under `mpirun` is
data-parallel too. NNGRAPH_DIST=0 turns it off.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from .errors import NNGraphError

SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE",
                  "MPI_LOCALNRANKS")
"""Launchers set one of these in every process they start: Open MPI, MPICH (Hydra) and Intel
MPI, PMIx (Slurm, Open MPI 5), MVAPICH."""

_WORLD: list = []


class DistError(NNGraphError):
    """Data-parallel training that cannot run: no mpi4py, an op or backend it does not cover."""


def launched_size() -> int:
    """How many processes the launcher says it started (1 without a launcher)."""
    if os.environ.get("NNGRAPH_DIST", "1") == "0":
        return 1
    for name in SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def world():
    """The World of this run, or None in a single process (the usual case; mpi4py is then
    never imported)."""
    if not _WORLD:
        _WORLD.append(_connect() if launched_size() > 1 else None)
    return _WORLD[0]


def _connect():
    try:
        from mpi4py import MPI
    except ImportError:
        raise DistError(f"this process was started by an MPI launcher ({launched_size()} "
                        "processes) and data-parallel training needs mpi4py, which is not "
                        "installed: pip install nngraph[dist]") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() < 2:
        return None
    return World(comm, comm.Get_rank(), comm.Get_size())


@dataclass
class World:
    comm: object
    rank: int
    size: int

    def share(self, n: int) -> tuple[int, int]:
        """This rank's samples [lo, hi) of a batch of n: the first n % size ranks one more."""
        base, extra = divmod(n, self.size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def averager(self):
        return GradientAverager(self)

    def merge(self, tally):
        """The epoch's training tally of every rank, summed, on every rank (one gather of
        a few numbers per loss at the end of an epoch)."""
        for r, other in enumerate(self.comm.allgather(tally)):
            if r != self.rank:              # allgather returns this rank's own as a copy
                tally.merge(other)
        return tally


class GradientAverager:
    """The executors' hook between backprop and the update: `weight` is this rank's share
    of the batch (set by fit before each step); `__call__(grads, loss)` replaces the
    gradient (a flat array, or a dict of arrays) and returns the loss of the whole batch."""

    def __init__(self, w: World):
        from mpi4py import MPI           # imported already: the World is mpi4py's
        self.world, self.weight = w, 1.0
        self.in_place, self.sum = MPI.IN_PLACE, MPI.SUM
        self.buffer = None
        self.seconds = 0.0               # spent in Allreduce, for tools/bench.py's dist case
        self.calls = 0

    def __call__(self, grads, loss: float) -> float:
        flat = grads if isinstance(grads, np.ndarray) else None
        parts = [grads[k] for k in sorted(grads)] if flat is None else [flat]
        size = sum(p.size for p in parts)
        dtype = parts[0].dtype if parts else np.float64
        if self.buffer is None or self.buffer.size != size + 1 or self.buffer.dtype != dtype:
            self.buffer = np.empty(size + 1, dtype)
        at = 0
        for p in parts:
            np.multiply(p.reshape(-1), self.weight, out=self.buffer[at:at + p.size])
            at += p.size
        self.buffer[-1] = loss * self.weight if self.weight else 0.0
        start = perf_counter()
        self.world.comm.Allreduce(self.in_place, self.buffer, op=self.sum)
        self.seconds += perf_counter() - start
        self.calls += 1
        at = 0
        for p in parts:
            p.reshape(-1)[...] = self.buffer[at:at + p.size]
            at += p.size
        return float(self.buffer[-1])


def check_trainable(model) -> None:
    """What data-parallel training covers: mean-reduced losses (their weighted sum is the
    batch's), on the cpu and reference backends."""
    if model.backend not in ("cpu", "reference"):
        raise DistError(f"data-parallel training runs on the cpu and reference backends, "
                        f"not {model.backend}")
    for name in model.program.losses:
        node = model.program.graph.node(name)
        if getattr(node.attrs, "reduction", "mean") != "mean":
            raise DistError(f"loss '{name}' sums over its batch (reduction: sum): "
                            "data-parallel training averages shares of a batch, which "
                            "equals one process's training for mean losses only")
