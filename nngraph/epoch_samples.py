"""A grid of generated images after every epoch, to watch a generator learn:
`nngraph train SPEC --samples DIR`, or from Python

    >>> model.fit(callback=epoch_samples(model, "samples"))    # samples/epoch_001.png, ...

Each picture is `model.predict(n=64)` of the network's first output, drawn by
nngraph/image_grid.py. Predict draws its codes without keying them on the training step
(nngraph/sampling.py), so every epoch's grid decodes the same 64 codes: the same cell
shows the same code's image as training goes on.
"""
from __future__ import annotations

import os

from .errors import DataError
from .image_grid import grid, image_shape, write_png


def epoch_samples(model, folder: str, n: int = 64):
    """A `fit` callback writing FOLDER/epoch_NNN.png. Writes the grid of the model as it is
    now at once (epoch_000.png for a new model), so that a network that samples nothing,
    has no image output or cannot generate without data is refused before training."""
    net = model.net
    if not net.sampled_inputs:
        raise DataError(f"'{net.name}' has no sampled inputs (`sample: normal` or "
                        "`uniform`): nothing to generate images from; --samples is for "
                        "generators such as specs/dcgan_mnist.yaml")
    if n < 1:
        raise DataError(f"the grid needs at least 1 sample, got {n}")
    output = net.outputs[0]
    shape = tuple(net.node(output)["shape"])
    try:
        image_shape(shape)
    except DataError as e:
        raise DataError(f"--samples draws output '{output}' as images: {e}") from None
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise DataError(f"{folder} exists and is not a folder")
    os.makedirs(folder, exist_ok=True)

    def write(epoch: int, logs: dict | None = None) -> None:
        out = model.predict(n=n)
        if isinstance(out, dict):
            out = out[output]
        write_png(os.path.join(folder, f"epoch_{epoch:03d}.png"), grid(out, shape))
    # the starting point (epoch_000.png before any training), which also finds out now
    # whether predict can generate without data
    write(model.epoch)
    return write
