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

The SHA-256s catch accidental damage only: anyone can edit a member and its checksum, so
`load` trusts nothing in a file. It reads it in an order that lets the sizes the file
declares be checked before what they describe is read: the zip directory (exactly these five
members, once each, stored or deflated; JSON members at most MAX_JSON_BYTES), meta.json,
spec.json, then each safetensors member: its header's length, its header (dtypes, shapes,
offsets that tile the data exactly), then its data, read in pieces, never more than the
header describes. With `expect` (what persist.read_model passes: the tensors the stored
spec makes) a member that declares more than the network's tensors take is refused unread;
without it, the zip-bomb limits MAX_MEMBER_BYTES and MAX_RATIO apply.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import secrets
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import ModelFileError
from .modelfile_members import (MAX_HEADER_BYTES, MAX_JSON_BYTES, Declared, check_params,  # noqa: F401
                               json_bytes, max_header, nbytes, parse_header, parse_json,
                               show, size_text, tensor_bytes)

FORMAT = "nngraph-model"
FORMAT_VERSION = 1
SPEC, PARAMS, OPTIMIZER, STATE, META = (
    "spec.json", "params.safetensors", "optimizer.safetensors", "state.safetensors", "meta.json")
TENSOR_MEMBERS = {"params": PARAMS, "optimizer": OPTIMIZER, "state": STATE}
MEMBERS = (SPEC, PARAMS, OPTIMIZER, STATE, META)
RESERVED_META = ("format", "format_version", "nngraph_version", "created", "sha256")

# Zip-bomb guards, checked against the sizes the archive declares before anything is read.
# A tensor member is held to the size of the tensors the network expects instead, where the
# caller says what they are (load's `expect`).
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
        SPEC: json_bytes(path, "spec", spec),
        PARAMS: tensor_bytes(path, "params", params),
        OPTIMIZER: tensor_bytes(path, "optimizer", optimizer),
        STATE: tensor_bytes(path, "state", state),
    }
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: cannot save: meta must be a dict, got {type(meta).__name__}")
    from .version import __version__
    full_meta = {key: value for key, value in meta.items() if key not in RESERVED_META}
    full_meta.update(
        format=FORMAT, format_version=FORMAT_VERSION, nngraph_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        sha256={name: hashlib.sha256(data).hexdigest() for name, data in members.items()})
    members[META] = json_bytes(path, "meta", full_meta)
    _write_atomically(path, members)


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


def load(path, expect=None) -> SavedModel:
    """Read and verify a model written by `save`; every problem is a `ModelFileError`.

    `expect(spec, meta)`, when given, is called once spec.json and meta.json are read and
    verified and before any tensor is: it may raise `ModelFileError`, and returns
    {"params" | "optimizer" | "state": {name: (shape, dtype)}} for the tables it knows. Such
    a table must then hold exactly those tensors, which is checked against the sizes the
    archive and the safetensors header declare before a byte of its data is read: a file
    can make `load` read no more than the model it claims to hold takes.
    """
    path = os.fspath(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:           # ValueError: a NUL in the path
        raise ModelFileError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ModelFileError(f"{path}: is a directory, not an nngraph model file")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(f"{path}: is not a regular file (a device, pipe or socket), "
                             "not an nngraph model file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if not head:
                raise ModelFileError(f"{path}: is empty, not an nngraph model file")
            f.seek(0)
            try:
                archive = zipfile.ZipFile(f)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError,
                    OverflowError, NotImplementedError, struct.error, UnicodeDecodeError):
                if b"PK\x03\x04".startswith(head):
                    raise ModelFileError(f"{path}: is truncated or damaged: its zip table of "
                                         "contents cannot be read (was the save interrupted?)") from None
                raise ModelFileError(f"{path}: is not an nngraph model file (not a zip archive)") from None
            with archive:
                return _read_archive(path, archive, expect)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not an nngraph model file") from None
    except ModelFileError:
        raise
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_archive(path: str, archive: zipfile.ZipFile, expect) -> SavedModel:
    _check_members(path, archive)
    meta = parse_json(path, META, _read_member(path, archive, META))
    _check_format(path, meta)
    hashes = _checksums(path, meta)
    blob = _read_member(path, archive, SPEC)
    _verify(path, SPEC, hashlib.sha256(blob), hashes)
    spec = parse_json(path, SPEC, blob)
    meta = {k: v for k, v in meta.items() if k != "sha256"}
    expected = expect(spec, meta) if expect is not None else {}
    tensors = {what: _read_tensors(path, archive, name, hashes, expected.get(what))
               for what, name in TENSOR_MEMBERS.items()}
    return SavedModel(spec=spec, meta=meta, **tensors)


def _check_members(path: str, archive: zipfile.ZipFile) -> None:
    """Exactly the five members, each once, stored or deflated, the JSON ones small enough;
    all from the zip directory, before anything is read."""
    infos = archive.infolist()
    names = [info.filename for info in infos]
    for name in MEMBERS:
        if name not in names:
            raise ModelFileError(f"{path}: is not a complete nngraph model file: member {name} is missing")
    for name in names:
        if name not in MEMBERS:
            raise ModelFileError(f"{path}: is not an nngraph model file: it has a member "
                                 f"{name!r} (a model file holds {', '.join(MEMBERS)})")
        if names.count(name) > 1:
            raise ModelFileError(f"{path}: is corrupted: member {name} appears "
                                 f"{names.count(name)} times")
    for info in infos:
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(f"{path}: {info.filename} is stored in a way nngraph cannot read "
                                 "(encrypted or an unsupported compression method)")
        if info.filename.endswith(".json"):
            _refuse_bomb(path, info, min(MAX_MEMBER_BYTES, MAX_JSON_BYTES))


def _refuse_bomb(path: str, info: zipfile.ZipInfo, limit: int) -> None:
    """The limits on a member whose size nothing else bounds, from what the zip declares."""
    name, size, packed = info.filename, info.file_size, info.compress_size
    if size > limit:
        raise ModelFileError(f"{path}: refused: member {name} declares "
                             f"{size_text(size)} uncompressed (the limit is {size_text(limit)})")
    if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(packed, 1):
        raise ModelFileError(f"{path}: refused: member {name} would expand "
                             f"{size // max(packed, 1)}-fold ({size_text(packed)} to {size_text(size)}); "
                             "this looks like a zip bomb, not a model")


@contextlib.contextmanager
def _reading(path: str, name: str):
    """Every way reading a member can fail, as a ModelFileError naming the member."""
    try:
        yield
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise ModelFileError(f"{path}: is corrupted: {name} fails its CRC-32 checksum") from None
        raise ModelFileError(f"{path}: is corrupted: {name} cannot be read (damaged zip headers)") from None
    except EOFError:
        raise ModelFileError(f"{path}: is truncated: {name} ends early") from None
    except (zlib.error, ValueError, OverflowError, OSError, struct.error):   # lying offsets, bad deflate data
        raise ModelFileError(f"{path}: is corrupted: {name} cannot be read or decompressed") from None
    except (NotImplementedError, RuntimeError):   # unknown compression method, encryption
        raise ModelFileError(f"{path}: {name} is stored in a way nngraph cannot read "
                             "(encrypted or an unsupported compression method)") from None


def _read_member(path: str, archive: zipfile.ZipFile, name: str) -> bytes:
    """A JSON member, whole; its declared size was checked against MAX_JSON_BYTES and
    zipfile never returns more than that."""
    with _reading(path, name), archive.open(name) as member:
        data = member.read(MAX_JSON_BYTES + 1)
        if len(data) != archive.getinfo(name).file_size:
            raise ModelFileError(f"{path}: is truncated: {name} ends early")
        return data


def _read_exactly(path: str, name: str, member, n: int, into=None) -> bytes:
    """`n` bytes of a member, in pieces of at most 1 MiB (into a preallocated buffer when
    `into` is given); a member that ends before them is truncated."""
    pieces, got = [], 0
    while got < n:
        piece = member.read(min(n - got, 1 << 20))
        if not piece:
            raise ModelFileError(f"{path}: is truncated: {name} ends early")
        if into is not None:
            into[got:got + len(piece)] = piece
        else:
            pieces.append(piece)
        got += len(piece)
    return into if into is not None else b"".join(pieces)


def _read_tensors(path: str, archive: zipfile.ZipFile, name: str, hashes: dict, expected):
    """A safetensors member, read in three steps, each checked before the next is read:
    the header's length, the header (every tensor's dtype, shape and place; against
    `expected` when given), then exactly the data the header describes."""
    info = archive.getinfo(name)
    declared = info.file_size
    if expected is None:
        _refuse_bomb(path, info, MAX_MEMBER_BYTES)
        header_limit = MAX_HEADER_BYTES
    else:
        need = sum(nbytes(shape, dtype) for shape, dtype in expected.values())
        header_limit = max_header(expected)
        if declared > 8 + header_limit + need:
            raise ModelFileError(
                f"{path}: refused: {name} declares {size_text(declared)} uncompressed, but the "
                f"{len(expected)} tensors the network has for it take {size_text(need)}; "
                "nothing of it was read")
    digest = hashlib.sha256()
    with _reading(path, name), archive.open(name) as member:
        if declared < 8:
            raise ModelFileError(f"{path}: {name} is not a readable safetensors table "
                                 f"(it is {declared} bytes long, shorter than its header)")
        head = _read_exactly(path, name, member, 8)
        size = int.from_bytes(head, "little")
        if size > min(header_limit, declared - 8):
            raise ModelFileError(f"{path}: {name} is not a readable safetensors table (its header "
                                 f"claims {size} bytes, more than "
                                 f"{'the member holds' if size > declared - 8 else 'its tensors need'})")
        text = _read_exactly(path, name, member, size)
        data_size = declared - 8 - size
        entries = parse_header(path, name, text, data_size)
        if expected is not None:
            declares = {key: Declared(shape, np.dtype(dtype))
                        for key, (dtype, shape, _, _) in entries.items()}
            check_params(declares, expected, path, what=f"the tensors in {name}")
        data = _read_exactly(path, name, member, data_size, bytearray(data_size))
        if member.read(1):         # zipfile stops at the declared size, and checks the CRC there
            raise ModelFileError(f"{path}: is corrupted: {name} is longer than it declares")
    digest.update(head)
    digest.update(text)
    digest.update(data)
    _verify(path, name, digest, hashes)
    tensors = {}
    for key, (dtype, shape, begin, end) in entries.items():
        if end == begin:
            tensors[key] = np.zeros(shape, dtype)
            continue
        stored = np.dtype(dtype).newbyteorder("<")
        array = np.frombuffer(data, stored, (end - begin) // stored.itemsize, begin).reshape(shape)
        if not array.flags.aligned or not stored.isnative:
            array = array.astype(np.dtype(dtype))
        tensors[key] = array
    return tensors


def _check_format(path: str, meta: dict) -> None:
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: is not an nngraph model file "
                             f"({META} says format {show(meta.get('format'))}, expected '{FORMAT}')")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path}: {META} has an invalid format_version {show(version)}")
    if version > FORMAT_VERSION:
        from .version import __version__
        written_by = meta.get("nngraph_version")
        written_by = written_by[:40] if isinstance(written_by, str) else "unknown version"
        raise ModelFileError(
            f"{path}: was written by a newer nngraph ({written_by}, "
            f"model format version {version}); this nngraph {__version__} reads format version "
            f"{FORMAT_VERSION} — upgrade nngraph to load it")
    for key in ("nngraph_version", "created"):
        if key in meta and not isinstance(meta[key], str):
            raise ModelFileError(f"{path}: {META}: {key} must be a string, got {show(meta[key])}")


def _checksums(path: str, meta: dict) -> dict:
    hashes = meta.get("sha256")
    if not isinstance(hashes, dict):
        raise ModelFileError(f"{path}: {META} has no member checksums (sha256)")
    for name in (SPEC, PARAMS, OPTIMIZER, STATE):
        digest = hashes.get(name)
        if not (isinstance(digest, str) and len(digest) == 64 and
                all(c in "0123456789abcdef" for c in digest)):
            raise ModelFileError(f"{path}: {META}: sha256 has no SHA-256 digest for {name}, "
                                 f"got {show(digest)}")
    return hashes


def _verify(path: str, name: str, digest, hashes: dict) -> None:
    if digest.hexdigest() != hashes[name]:
        raise ModelFileError(f"{path}: is corrupted: {name} does not match its SHA-256 "
                             "checksum (the file was modified after it was saved)")
