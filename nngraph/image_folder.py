"""A folder of images as training data (`train.data.images`), one sub-folder per class:

    photos/cat/001.png  photos/cat/002.jpg  photos/dog/001.png  ...

read as Keras' `image_dataset_from_directory` reads it: class i is the i-th sub-folder in
sorted name order, and a class's images may sit at any depth below its sub-folder. Hidden
files and folders, and files whose extension is not an image's, are skipped. Each image is
converted to the input's channels ([1, H, W] grayscale, [3, H, W] RGB) and must be H x W
pixels, unless `resize` (Pillow's bilinear resampling). A float input gets the pixels as
value / 255, in [0, 1] (divided in the input's dtype, rounded once); an integer one gets
the 0-255 values.

    >>> folder = read_image_folder("photos", shape=(3, 32, 32))
    >>> folder.images.shape, folder.labels[:3], folder.classes
    ((120, 3, 32, 32), array([0, 0, 0]), ('cat', 'dog'))

Reading images needs Pillow (`pip install pillow`, or nngraph[images]); nothing else in
nngraph does.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
              ".pgm", ".pbm")
MODES = {1: "L", 3: "RGB"}        # channels -> Pillow's mode: grayscale, RGB


@dataclass
class ImageFolder:
    images: np.ndarray             # (n, C, H, W)
    labels: np.ndarray             # (n,) int64 class indices
    classes: tuple[str, ...]       # sub-folder names; class i is classes[i]
    files: list[str]               # each image's path, in the order of `images`


def read_image_folder(path: str, shape, dtype: str = "float32", resize: bool = False,
                      input_name: str = "image") -> ImageFolder:
    """Every image below `path`, fitted to an input of `shape` [C, H, W] named `input_name`
    (for the messages). Raises DataError."""
    channels, height, width = _image_shape(shape, input_name)
    classes, files, labels = index_folder(path)
    image = _pillow()
    pixels = np.empty((len(files), channels, height, width), np.uint8)
    for i, file in enumerate(files):
        try:
            with image.open(file) as im:
                if im.mode.startswith(("I", "F")):     # 16/32-bit: convert() would clip them
                    raise DataError(f"{file}: a {im.mode} image (more than 8 bits per pixel); "
                                    "nngraph reads 8-bit images: save it as 8-bit, or convert "
                                    "the folder to an .npz (docs/data.md)")
                if im.size != (width, height) and not resize:
                    raise DataError(_size_error(file, im.size, i, shape, input_name))
                im = im.convert(MODES[channels])
                if im.size != (width, height):
                    im = im.resize((width, height), image.Resampling.BILINEAR)
                values = np.asarray(im, np.uint8)
        except (OSError, ValueError, SyntaxError, image.DecompressionBombError) as e:
            raise DataError(f"{file}: cannot read it as an image: {e}") from None
        pixels[i] = values[None] if channels == 1 else values.transpose(2, 0, 1)
    if np.dtype(dtype).kind == "f":
        scaled = pixels.astype(dtype)
        scaled /= scaled.dtype.type(255)
        pixels = scaled
    return ImageFolder(pixels, np.array(labels, np.int64), classes, files)


def index_folder(path: str) -> tuple[tuple[str, ...], list[str], list[int]]:
    """(class names, image files, their class indices) of a folder of class sub-folders."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such folder")
    if not os.path.isdir(path):
        raise DataError(f"{path}: not a folder; images: takes a folder with one sub-folder of "
                        "images per class (an .npz or CSV file goes under npz: or csv:)")
    entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
    classes = tuple(e for e in entries if os.path.isdir(os.path.join(path, e)))
    loose = [e for e in entries if e not in classes and _is_image(e)]
    layout = (f"put each class's images in a sub-folder named for the class "
              f"({os.path.join(path, 'cat', '1.png')}, {os.path.join(path, 'dog', '2.png')}, ...)")
    if not classes:
        what = f"holds {len(loose)} image(s) but" if loose else "has"
        raise DataError(f"{path}: the folder {what} no class sub-folders: {layout}")
    if loose:
        raise DataError(f"{os.path.join(path, loose[0])}: an image outside the class "
                        f"sub-folders ({', '.join(classes)}), so it has no class: {layout}")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = _images_below(os.path.join(path, name))
        if not found:
            raise DataError(f"{os.path.join(path, name)}: class sub-folder '{name}' holds no "
                            f"images ({', '.join(EXTENSIONS)}); remove it or add its images")
        files += found
        labels += [label] * len(found)
    return classes, files, labels


def _images_below(folder):
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, n) for n in sorted(names)
                  if not n.startswith(".") and _is_image(n)]
    return found


def _is_image(name):
    return name.lower().endswith(EXTENSIONS)


def _image_shape(shape, input_name):
    shape = tuple(shape)
    if len(shape) != 3 or shape[0] not in MODES:
        raise DataError(f"images feed input '{input_name}', declared with shape "
                        f"{list(shape)}; images need an input of shape [channels, height, "
                        f"width] with 1 channel (grayscale) or 3 (RGB), such as [1, 28, 28] "
                        f"(a dense network flattens it in a layer: {{op: flatten}})")
    return shape


def _size_error(file, size, matched, shape, input_name):
    (w, h), (c, height, width) = size, shape
    before = f"; the {matched} image(s) read before it are {width}x{height}" if matched else ""
    return (f"{file}: {w}x{h} pixels (width x height), but input '{input_name}' of shape "
            f"[{c}, {height}, {width}] takes {width}x{height}{before}. Add resize: true to "
            f"train.data to resize every image, or resize the files"
            + ("" if matched else f", or declare the input as [{c}, {h}, {w}]"))


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading a folder of images needs the Pillow package, which is not "
                        "installed: pip install pillow (or pip install nngraph[images])"
                        ) from None
    return Image
