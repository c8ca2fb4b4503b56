"""Sampled inputs: `inputs: {z: {shape: [16], sample: normal}}` is noise the model draws for
every batch (a GAN generator's codes) instead of reading it from the data.

    normal    N(0, 1) values
    uniform   U[-1, 1) values

A caller may still pass a sampled input (`model.predict({"z": codes})` decodes chosen
codes); only where the batch lacks it is it drawn. The data never has to hold it: a
dataset, an npz file or `fit(data)` supplies the other inputs alone.

How many rows: as many as the batch's other inputs have (a GAN's discriminator reads a
batch of real samples, and the generator draws one code per real sample). A network whose
inputs are all sampled has nothing to count, so predict takes the number of rows from the
caller: `model.predict(n=64)`; training and evaluating such a network need some data input.

Which numbers: every value is a pure function of (model seed, purpose, step, input name,
index in the batch), drawn from the counter-based stream of nngraph/random_stream.py, so
the numbers do not depend on the backend (the executors only see an input array) and a
model saved and loaded again (it keeps its seed and step) draws what it would have drawn
had it never stopped. Training draws afresh at every step (the key holds the step).
Evaluation and predict do not key on the step: the same data evaluated after each epoch
meets the same noise, so that validation losses compare across epochs, and predict(n=64)
shows the same 64 codes decoded as training goes on (pass other codes for other samples).
Under data-parallel training (nngraph/dist.py) each rank's key holds its rank too, so that
ranks do not draw the same codes for their parts of the batch.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from . import random_stream
from .errors import DataError

KINDS = ("normal", "uniform")
"""What `sample:` may say (spec/build.py SAMPLES is the same list)."""

_PURPOSE = {"train": 1, "evaluate": 2, "predict": 3}
_TAG = 0x5A4D504C                     # apart from the streams of dropout and noise layers


def draw(net, name: str, rows: int, seed: int, purpose: str, step: int = 0,
         rank: int = 0) -> np.ndarray:
    """`rows` samples of sampled input `name`, shaped (rows,) + its shape, in its dtype."""
    d = net.inputs[name]
    words = [seed, _TAG, _PURPOSE[purpose], step, rank, zlib.crc32(name.encode())]
    key = random_stream.key(words)
    counters = random_stream.counters((rows, math.prod(d.shape)))
    if d.sample == "normal":
        values = random_stream.normal(key, counters)
    else:
        values = 2.0 * random_stream.uniform(key, counters) - 1.0
    return np.ascontiguousarray(values.reshape((rows,) + tuple(d.shape)), dtype=d.dtype)


def fill(net, batch: dict, seed: int, purpose: str, step: int = 0, rank: int = 0,
         rows: int | None = None) -> dict:
    """`batch` with every sampled input it lacks drawn; `batch` itself when it lacks none.
    `rows` is the number of rows where the batch has no other input (predict's n)."""
    missing = [n for n in net.sampled_inputs if n not in batch]
    if not missing:
        return batch
    have = len(next(iter(batch.values()))) if batch else None
    if have is not None and rows is not None and rows != have:
        raise DataError(f"n={rows} rows asked for, but the inputs given have {have}; "
                        f"leave n out to draw {', '.join(missing)} for each of them")
    rows = have if have is not None else rows
    if rows is None:
        raise DataError(_no_rows(net, missing))
    if rows < 1:
        raise DataError(f"n must be at least 1, got {rows}")
    out = dict(batch)
    for name in missing:
        out[name] = draw(net, name, rows, seed, purpose, step, rank)
    return out


def fill_training(model, batch: dict) -> dict:
    """The batch of the model's next training step (or gradients) with its noise drawn."""
    if not model.net.sampled_inputs:
        return batch
    world = getattr(model.executor.reduce, "world", None)
    return fill(model.net, batch, model.seed, "train", model.step,
                world.rank if world is not None else 0)


def _no_rows(net, missing) -> str:
    drawn = ", ".join(f"'{n}'" for n in missing)
    if not net.feature_inputs and not net.label_inputs:
        return (f"every input of '{net.name}' is sampled ({drawn}): nothing says how many "
                f"rows to draw; predict takes n, as model.predict(n=64), or the inputs "
                f"themselves, as model.predict({{'{missing[0]}': codes}})")
    return f"no data to draw {drawn} for: pass the inputs {', '.join(net.feature_inputs)}"
