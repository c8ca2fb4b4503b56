"""Memory planning: one arena for every intermediate buffer of a step, offsets reused.

Every buffer a step needs (layer outputs, gradients, kernel scratch) holds `per_sample`
values for each sample of the batch, so offsets are planned once in per-sample units and
scaled by the batch size at run time: buffer b of a batch of N samples is
arena[offset_b * N : (offset_b + size_b) * N]. Two buffers share space when their lifetimes
(first write .. last read, in schedule positions) do not overlap. A buffer with `alias_of`
has no space of its own: it is another buffer's values in its own shape (a flatten's output
is its input), and that buffer lives as long as either is used.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Buffer:
    name: str
    shape: tuple            # per sample
    first: int              # schedule position of the first write
    last: int               # schedule position of the last read
    offset: int = -1        # per-sample offset in the arena, set by plan_memory
    layout: str = "batch"   # batch: (N,) + shape;  cols: (shape[0], N * shape[1]) (im2col);
                            # time: (shape[0], N) + shape[1:];  rows: (N * shape[0],) + shape[1:]
                            # fixed: shape, whatever N is (per-channel statistics)
    kind: str = "float"     # float buffers and int buffers (arg-max indices) live apart
    alias_of: str | None = None     # the buffer whose space this one views

    def view(self, arena, n):
        block = arena[self.offset * n:(self.offset + self.size) * n]
        if self.layout == "cols":
            return block.reshape((self.shape[0], n * self.shape[1]))
        if self.layout == "time":
            return block.reshape((self.shape[0], n) + self.shape[1:])
        if self.layout == "rows":
            return block.reshape((n * self.shape[0],) + self.shape[1:])
        if self.layout == "fixed":
            return block[:self.size].reshape(self.shape)
        return block.reshape((n,) + self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return max(n, 1)


def plan_memory(buffers: list[Buffer]) -> int:
    """Assign offsets (first fit, largest first); returns the arena's per-sample size.
    Call it once per arena (float and int buffers separately)."""
    bases = {b.name: b for b in buffers if b.alias_of is None}
    aliases = [b for b in buffers if b.alias_of is not None]
    for a in aliases:
        base = bases[a.alias_of]
        base.first, base.last = min(base.first, a.first), max(base.last, a.last)
    placed: list[Buffer] = []
    for b in sorted(bases.values(), key=lambda b: (-b.size, b.first)):
        busy = sorted((p.offset, p.offset + p.size) for p in placed
                      if not (p.last < b.first or b.last < p.first))
        offset = 0
        for lo, hi in busy:
            if offset + b.size <= lo:
                break
            offset = max(offset, hi)
        b.offset = offset
        placed.append(b)
    for a in aliases:
        a.offset = bases[a.alias_of].offset
    return max((b.offset + b.size for b in buffers), default=0)


def arena_views(buffers, sizes: dict, n: int, dtype, allocate) -> dict:
    """{buffer name: its view} of a new arena at batch size n: the float buffers' arena in
    `dtype`, the int ones' in int64, each made by `allocate(length, dtype)` (numpy.zeros on
    the CPU, a device array on the GPU); `sizes` per sample, as plan_memory gave them."""
    arenas = {"float": allocate(max(sizes["float"] * n, 1), dtype),
              "int": allocate(max(sizes["int"] * n, 1), "int64")}
    return {b.name: b.view(arenas[b.kind], n) for b in buffers}
