"""The `.nnz` saved-model format: one zip archive, written atomically, checked on load.

    >>> from nngraph import modelfile
    >>> modelfile.save("mlp.nnz", spec, params, optimizer={}, state={}, meta={"epoch": 3})
    >>> saved = modelfile.load("mlp.nnz")
    >>> saved.params["fc1.W"].shape, saved.meta["epoch"]
    ((784, 128), 3)

Members of the archive:

    spec.json              the network spec as plain data
    params.safetensors     {"c1.W": array, ...}
    optimizer.safetensors  {"c1.W/m": array, ...}          (may hold no tensors)
    state.safetensors      {"bn1.running_mean": array}     (may hold no tensors)
    meta.json              format, format_version, nngraph_version, created, the caller's
                           meta, and "sha256": {member: hex digest} of the four others

Every problem with a file, and every value `save` cannot store, is a `ModelFileError` whose
message starts with the file's path; no zipfile, json or safetensors exception escapes.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
import safetensors.numpy

from .errors import ModelFileError

FORMAT = "nngraph-model"
FORMAT_VERSION = 1
SPEC, PARAMS, OPTIMIZER, STATE, META = (
    "spec.json", "params.safetensors", "optimizer.safetensors", "state.safetensors", "meta.json")
TENSOR_MEMBERS = {"params": PARAMS, "optimizer": OPTIMIZER, "state": STATE}
DTYPES = ("float32", "float64", "int64", "int32")
RESERVED_META = ("format", "format_version", "nngraph_version", "created", "sha256")

# Zip-bomb guards, checked against the sizes the archive declares before anything is read.
MAX_MEMBER_BYTES = 4 << 30
MAX_RATIO = 1000
RATIO_FLOOR_BYTES = 1 << 20      # a member smaller than this cannot hurt, whatever its ratio


@dataclass
class SavedModel:
    spec: dict
    params: dict
    optimizer: dict
    state: dict
    meta: dict       # meta.json without "sha256": the caller's keys plus format, created, ...


# ---------------------------------------------------------------------------- save

def save(path, spec: dict, params: dict, optimizer: dict, state: dict, meta: dict) -> None:
    """Write a model to `path` (conventionally `.nnz`), replacing any file there atomically.

    Arrays must be numpy arrays of float32, float64, int64 or int32; `spec` and `meta` must be
    JSON data (numpy scalars and arrays in them are written as plain numbers and lists; NaN
    and infinities are kept). The keys format, format_version, nngraph_version, created and
    sha256 of `meta` are always written by `save`; values passed for them are replaced.
    Anything that cannot be stored raises `ModelFileError` before the disk is touched; a
    failed write leaves the previous file at `path` as it was and no temporary file behind.
    """
    path = os.fspath(path)
    members = {
        SPEC: _json_bytes(path, "spec", spec),
        PARAMS: _tensor_bytes(path, "params", params),
        OPTIMIZER: _tensor_bytes(path, "optimizer", optimizer),
        STATE: _tensor_bytes(path, "state", state),
    }
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: cannot save: meta must be a dict, got {type(meta).__name__}")
    from . import __version__
    full_meta = {key: value for key, value in meta.items() if key not in RESERVED_META}
    full_meta.update(
        format=FORMAT, format_version=FORMAT_VERSION, nngraph_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        sha256={name: hashlib.sha256(data).hexdigest() for name, data in members.items()})
    members[META] = _json_bytes(path, "meta", full_meta)
    _write_atomically(path, members)


def _json_bytes(path: str, what: str, value) -> bytes:
    if what == "spec" and not isinstance(value, dict):
        raise ModelFileError(f"{path}: cannot save: spec must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, indent=1, default=_numpy_to_json).encode("utf-8")
    except (TypeError, ValueError) as exc:    # unserialisable value, or a circular reference
        raise ModelFileError(f"{path}: cannot save: {what} is not plain JSON data: {exc}") from None


def _numpy_to_json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be written as JSON")


def _tensor_bytes(path: str, what: str, tensors) -> bytes:
    if not isinstance(tensors, dict):
        raise ModelFileError(f"{path}: cannot save: {what} must be a dict of arrays, "
                             f"got {type(tensors).__name__}")
    problems, arrays = [], {}
    for name, array in tensors.items():
        if not isinstance(name, str):
            problems.append(f"name {name!r} is not a string")
        elif not isinstance(array, np.ndarray):
            problems.append(f"'{name}' is a {type(array).__name__}, not a numpy array")
        elif array.dtype.name not in DTYPES:
            problems.append(f"'{name}' has dtype {array.dtype}; nngraph stores {', '.join(DTYPES)}")
        else:   # safetensors wants C-contiguous little-endian data (ascontiguousarray makes 0-d 1-d)
            arrays[name] = np.asarray(array, dtype=np.dtype(array.dtype.name).newbyteorder("<"), order="C")
    if problems:
        raise ModelFileError(f"{path}: cannot save {what}: " + "; ".join(problems))
    return safetensors.numpy.save(arrays)


def _write_atomically(path: str, members: dict[str, bytes]) -> None:
    directory, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        problem = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise ModelFileError(f"{path}: cannot save: directory {directory} {problem}")
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: cannot save: it is a directory")
    tmp = _create_temp(path, directory, base)
    try:
        with open(tmp, "wb") as f:
            with zipfile.ZipFile(f, "w") as archive:
                when = datetime.datetime.now().timetuple()[:6]
                for name, data in members.items():
                    info = zipfile.ZipInfo(name, date_time=when)
                    # Tensors barely compress and zeros (fresh optimizer moments) compress so
                    # well they would look like a zip bomb; only the JSON is deflated.
                    info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
                    archive.writestr(info, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:      # KeyboardInterrupt too: never leave the temp file behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ModelFileError(f"{path}: cannot save: {exc.strerror or exc}") from None
        raise
    _fsync_directory(directory)


def _create_temp(path: str, directory: str, base: str) -> str:
    """A new file beside `path`, created with the usual permissions (umask applies)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot save: {exc.strerror or exc}") from None
    raise ModelFileError(f"{path}: cannot save: no free temporary file name in {directory}")


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- load

def load(path) -> SavedModel:
    """Read and verify a model written by `save`; every problem is a `ModelFileError`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if not head:
                raise ModelFileError(f"{path}: is empty, not an nngraph model file")
            f.seek(0)
            try:
                archive = zipfile.ZipFile(f)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError,
                    OverflowError, NotImplementedError):
                if b"PK\x03\x04".startswith(head):
                    raise ModelFileError(f"{path}: is truncated or damaged: its zip table of "
                                         "contents cannot be read (was the save interrupted?)") from None
                raise ModelFileError(f"{path}: is not an nngraph model file (not a zip archive)") from None
            with archive:
                return _read_archive(path, archive)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not an nngraph model file") from None
    except ModelFileError:
        raise
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_archive(path: str, archive: zipfile.ZipFile) -> SavedModel:
    _refuse_bombs(path, archive)
    meta = _parse_json(path, META, _read_member(path, archive, META))
    _check_format(path, meta)
    hashes = meta.get("sha256")
    if not isinstance(hashes, dict):
        raise ModelFileError(f"{path}: {META} has no member checksums (sha256)")
    data = {name: _read_member(path, archive, name) for name in (SPEC, PARAMS, OPTIMIZER, STATE)}
    for name, blob in data.items():
        if hashlib.sha256(blob).hexdigest() != hashes.get(name):
            raise ModelFileError(f"{path}: is corrupted: {name} does not match its SHA-256 "
                                 "checksum (the file was modified after it was saved)")
    spec = _parse_json(path, SPEC, data[SPEC])
    tensors = {what: _parse_tensors(path, name, data[name]) for what, name in TENSOR_MEMBERS.items()}
    return SavedModel(spec=spec, meta={k: v for k, v in meta.items() if k != "sha256"}, **tensors)


def _refuse_bombs(path: str, archive: zipfile.ZipFile) -> None:
    for info in archive.infolist():
        size, packed = info.file_size, info.compress_size
        if size > MAX_MEMBER_BYTES:
            raise ModelFileError(f"{path}: refused: member {info.filename} declares "
                                 f"{_bytes(size)} uncompressed (the limit is {_bytes(MAX_MEMBER_BYTES)})")
        if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(packed, 1):
            raise ModelFileError(f"{path}: refused: member {info.filename} would expand "
                                 f"{size // max(packed, 1)}-fold ({_bytes(packed)} to {_bytes(size)}); "
                                 "this looks like a zip bomb, not a model")


def _read_member(path: str, archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        with archive.open(name) as member:
            return member.read(MAX_MEMBER_BYTES + 1)
    except KeyError:
        raise ModelFileError(f"{path}: is not a complete nngraph model file: member {name} is missing") from None
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise ModelFileError(f"{path}: is corrupted: {name} fails its CRC-32 checksum") from None
        raise ModelFileError(f"{path}: is corrupted: {name} cannot be read (damaged zip headers)") from None
    except EOFError:
        raise ModelFileError(f"{path}: is truncated: {name} ends early") from None
    except (zlib.error, ValueError, OverflowError, OSError):    # lying offsets, bad deflate data
        raise ModelFileError(f"{path}: is corrupted: {name} cannot be read or decompressed") from None
    except (NotImplementedError, RuntimeError):   # unknown compression method, encryption
        raise ModelFileError(f"{path}: {name} is stored in a way nngraph cannot read "
                             "(encrypted or an unsupported compression method)") from None


def _parse_json(path: str, name: str, blob: bytes) -> dict:
    try:
        value = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ModelFileError(f"{path}: {name} is not valid JSON{where}") from None
    except RecursionError:
        raise ModelFileError(f"{path}: {name} is nested too deeply") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: {name} must hold a JSON object, not {type(value).__name__}")
    return value


def _check_format(path: str, meta: dict) -> None:
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: is not an nngraph model file "
                             f"({META} says format {meta.get('format')!r}, expected '{FORMAT}')")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path}: {META} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        from . import __version__
        raise ModelFileError(
            f"{path}: was written by a newer nngraph ({meta.get('nngraph_version', 'unknown version')}, "
            f"model format version {version}); this nngraph {__version__} reads format version "
            f"{FORMAT_VERSION} — upgrade nngraph to load it")


def _parse_tensors(path: str, name: str, blob: bytes) -> dict:
    try:
        tensors = safetensors.numpy.load(blob)
    except Exception:    # SafetensorError and numpy errors for a header that lies
        raise ModelFileError(f"{path}: {name} is not a readable safetensors table") from None
    for key, array in tensors.items():
        if array.dtype.name not in DTYPES:
            raise ModelFileError(f"{path}: {name}: '{key}' has dtype {array.dtype}, "
                                 f"which nngraph does not use ({', '.join(DTYPES)})")
    return tensors


# ---------------------------------------------------------------------------- check

def check_params(saved_params: dict, expected: dict, path) -> None:
    """Raise one `ModelFileError` listing every way `saved_params` fails to fit a network.

    `expected` maps each parameter name to (shape, dtype); a dtype of None is not checked.

        c1.W: file has 6×1×5×5, network expects 8×1×5×5
    """
    problems = []
    missing = [name for name in expected if name not in saved_params]
    unexpected = [name for name in saved_params if name not in expected]
    if missing:
        problems.append("missing from the file: " + ", ".join(missing))
    if unexpected:
        problems.append("in the file but not in the network: " + ", ".join(unexpected))
    for name, (shape, dtype) in expected.items():
        if name not in saved_params:
            continue
        array = saved_params[name]
        if tuple(array.shape) != tuple(shape):
            problems.append(f"{name}: file has {_shape(array.shape)}, network expects {_shape(shape)}")
        elif dtype is not None and np.dtype(array.dtype) != np.dtype(dtype):
            problems.append(f"{name}: file has {np.dtype(array.dtype)}, network expects {np.dtype(dtype)}")
    if problems:
        raise ModelFileError(f"{os.fspath(path)}: parameters do not fit the network:\n  "
                             + "\n  ".join(problems))


def _shape(shape) -> str:
    return "×".join(str(d) for d in shape) if len(shape) else "a scalar"


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
