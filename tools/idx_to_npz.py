"""Convert the four original MNIST IDX files on disk into one .npz that nngraph trains from.

    python tools/idx_to_npz.py ~/Downloads/mnist -o mnist.npz

reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
t10k-labels-idx1-ubyte from the folder (each may end in .gz; Fashion-MNIST uses the same
names) and writes `image` (70000, 1, 28, 28) float32 pixels / 255 and `label` (70000,)
int64, the 60,000 training digits first, then the 10,000 test digits. A spec then reads it
with `data: {npz: mnist.npz, shuffle: false, validation_split: 0.142857143,
test_split: 0.142857143}`: the last 10,000 (the official test set) are the test split,
the 10,000 before them the validation split. Nothing is downloaded; numpy and gzip only.
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys

import numpy as np

# The IDX format (yann.lecun.com/exdb/mnist): 0, 0, a type code, the number of dimensions,
# then each dimension as a big-endian uint32, then the values, big-endian.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
PARTS = (("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


def read_idx(path: str) -> np.ndarray:
    """The array in an IDX file (gzip-compressed when its name ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (it does not start with 0, 0, a type code)")
    ndim = data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise ValueError(f"{path}: truncated in its header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - start != count * dtype.itemsize:
        raise ValueError(f"{path}: the header says {'x'.join(map(str, shape))} values of "
                         f"{dtype.itemsize} byte(s), but {len(data) - start} bytes follow it")
    return np.frombuffer(data, dtype, count, start).reshape(shape).astype(dtype.newbyteorder("="))


def find(folder: str, name: str) -> str:
    for candidate in (name, name + ".gz", name.replace("-idx", ".idx"),
                      name.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{folder}: no {name} (or {name}.gz)")


def convert(folder: str, out: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the four files in `folder`, write `out`; returns (image, label) as written."""
    images, labels = [], []
    for image_name, label_name in PARTS:
        x, y = read_idx(find(folder, image_name)), read_idx(find(folder, label_name))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{folder}: {image_name} holds {x.shape} and {label_name} "
                             f"{y.shape}; expected (n, rows, columns) images and (n,) labels")
        images.append(x)
        labels.append(y)
    image = np.concatenate(images)[:, None].astype(np.float32) / 255
    label = np.concatenate(labels).astype(np.int64)
    np.savez_compressed(out, image=image, label=label)
    return image, label


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the folder holding the four IDX files")
    parser.add_argument("-o", "--out", default="mnist.npz", help="default: mnist.npz")
    args = parser.parse_args(argv)
    try:
        image, label = convert(args.folder, args.out)
    except (OSError, ValueError, EOFError) as e:
        print(f"idx_to_npz: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: image {image.shape} float32, label {label.shape} int64, "
          f"{np.bincount(label).tolist()} per class")
    return 0


if __name__ == "__main__":
    sys.exit(main())
