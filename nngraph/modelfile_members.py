"""The members of a `.nnz` file as bytes and back, each checked: JSON (spec.json, meta.json)
and safetensors (params, optimizer and state tensors). nngraph/modelfile.py reads and writes
the archive around them; every problem is a ModelFileError starting with the file's path."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

import numpy as np
import safetensors.numpy

from .errors import ModelFileError

DTYPES = ("float32", "float64", "int64", "int32")
MAX_JSON_BYTES = 16 << 20        # spec.json and meta.json, written and read
MAX_HEADER_BYTES = 100 << 20     # a safetensors header (safetensors' own limit)


def json_bytes(path: str, what: str, value) -> bytes:
    if what == "spec" and not isinstance(value, dict):
        raise ModelFileError(f"{path}: cannot save: spec must be a dict, got {type(value).__name__}")
    try:
        data = json.dumps(value, indent=1, default=_numpy_to_json).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:   # unserialisable, circular, too deep
        raise ModelFileError(f"{path}: cannot save: {what} is not plain JSON data: {exc}") from None
    if len(data) > MAX_JSON_BYTES:      # load would refuse it
        raise ModelFileError(f"{path}: cannot save: {what} takes {size_text(len(data))} as JSON "
                             f"(the limit is {size_text(MAX_JSON_BYTES)})")
    return data


def _numpy_to_json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be written as JSON")


def tensor_bytes(path: str, what: str, tensors) -> bytes:
    if not isinstance(tensors, Mapping):     # a dict, or a backend's mirror of device arrays
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


class Declared:
    """What a safetensors header says of a tensor, shaped like an array for check_params."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype


def nbytes(shape, dtype) -> int:
    return math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize


def max_header(expected: dict) -> int:
    """The most a safetensors header describing `expected` can take: every character of the
    names escaped as a surrogate pair (12 bytes), every number at its widest."""
    return 1024 + sum(12 * len(k) + 128 + 24 * len(shape)
                      for k, (shape, _) in expected.items())


# safetensors dtype names; those nngraph does not store are refused with their numpy names
ST_DTYPES = {"F64": "float64", "F32": "float32", "I64": "int64", "I32": "int32",
             "F16": "float16", "BF16": "bfloat16", "I16": "int16", "I8": "int8",
             "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
             "F8_E4M3": "float8_e4m3", "F8_E5M2": "float8_e5m2"}


MAX_RANK = 32


def parse_header(path: str, name: str, text: bytes, data_size: int) -> dict:
    """{tensor: (dtype, shape, begin, end)} from a safetensors header; the tensors must tile
    the `data_size` bytes after it exactly, each taking what its shape and dtype need."""
    def bad(why):
        return ModelFileError(f"{path}: {name} is not a readable safetensors table ({why})")

    header = _json_loads(path, name, text, bad)
    if not isinstance(header, dict):
        raise bad(f"its header is a JSON {_json_type(header)}, not an object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and
                                     all(isinstance(v, str) for v in metadata.values())):
        raise bad("its __metadata__ is not a map of strings")
    entries = {}
    for key, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"{show(key)} is not a tensor entry with dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in ST_DTYPES:
            raise bad(f"{show(key)} has an unknown dtype {dtype!r}"[:200])
        if ST_DTYPES[dtype] not in DTYPES:
            raise ModelFileError(f"{path}: {name}: {show(key)} has dtype {ST_DTYPES[dtype]}, "
                                 f"which nngraph does not use ({', '.join(DTYPES)})")
        if not (isinstance(shape, list) and len(shape) <= MAX_RANK and all(_is_count(d) for d in shape)
                and math.prod(max(d, 1) for d in shape) < 1 << 56):   # what numpy can shape
            raise bad(f"{show(key)} has a shape that is not a list of at most {MAX_RANK} sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
                and offsets[0] <= offsets[1] <= data_size):
            raise bad(f"{show(key)} has data_offsets that are not two positions in its "
                      f"{data_size} bytes of data")
        dtype = ST_DTYPES[dtype]
        if nbytes(shape, dtype) != offsets[1] - offsets[0]:
            raise bad(f"{show(key)} is {_shape(shape)} of {dtype}, {nbytes(shape, dtype)} bytes, "
                      f"but has {offsets[1] - offsets[0]} bytes of data")
        entries[key] = (dtype, shape, offsets[0], offsets[1])
    at = 0
    for key, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != at:
            raise bad(f"{show(key)} does not start where the tensor before it ends: the data "
                      "has gaps or overlaps")
        at = end
    if at != data_size:
        raise bad(f"its tensors take {at} bytes but it holds {data_size} bytes of data")
    return entries


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    keys = set()
    for key, _ in pairs:
        if key in keys:
            raise _DuplicateKey(key)
        keys.add(key)
    return dict(pairs)


def _json_loads(path: str, name: str, blob: bytes, bad):
    try:
        return json.loads(blob.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    except _DuplicateKey as exc:
        raise bad(f"the key {str(exc)[:100]!r} appears twice") from None
    except json.JSONDecodeError as exc:
        raise bad(f"not valid JSON: line {exc.lineno}, column {exc.colno}") from None
    except ValueError:      # an integer too long to convert
        raise bad("not valid JSON: a number too long to read") from None
    except RecursionError:
        raise bad("nested too deeply") from None


def _json_type(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null",
            int: "number", float: "number"}.get(type(value), type(value).__name__)


def parse_json(path: str, name: str, blob: bytes) -> dict:
    try:
        value = json.loads(blob.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ModelFileError(f"{path}: {name} is not valid JSON{where}") from None
    except _DuplicateKey as exc:
        raise ModelFileError(f"{path}: {name} is not valid: the key {str(exc)[:100]!r} "
                             "appears twice in one object") from None
    except ValueError:      # an integer too long to convert
        raise ModelFileError(f"{path}: {name} is not valid JSON (a number too long to read)") from None
    except RecursionError:
        raise ModelFileError(f"{path}: {name} is nested too deeply") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: {name} must hold a JSON object, not {type(value).__name__}")
    return value


def show(value) -> str:
    """A value from a file, for a message: short, whatever it is."""
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "..." + text[-6:]


def check_params(saved_params: dict, expected: dict, path, what: str = "parameters") -> None:
    """Raise one `ModelFileError` listing every way `saved_params` fails to fit a network.

    `expected` maps each parameter name to (shape, dtype); a dtype of None is not checked.
    `what` names the tensors in the message's first line.

        c1.W: file has 6×1×5×5, network expects 8×1×5×5
    """
    problems = []
    missing = [name for name in expected if name not in saved_params]
    unexpected = [name for name in saved_params if name not in expected]
    if missing:
        problems.append("missing from the file: " + _names(missing))
    if unexpected:
        problems.append("in the file but not in the network: " + _names(unexpected))
    for name, (shape, dtype) in expected.items():
        if name not in saved_params:
            continue
        array = saved_params[name]
        if tuple(array.shape) != tuple(shape):
            problems.append(f"{name}: file has {_shape(array.shape)}, network expects {_shape(shape)}")
        elif dtype is not None and np.dtype(array.dtype) != np.dtype(dtype):
            problems.append(f"{name}: file has {np.dtype(array.dtype)}, network expects {np.dtype(dtype)}")
    if len(problems) > 12:
        problems[12:] = [f"and {len(problems) - 12} more"]
    if problems:
        raise ModelFileError(f"{os.fspath(path)}: {what} do not fit the network:\n  "
                             + "\n  ".join(problems))


def _names(names: list) -> str:
    shown = ", ".join(n if n.isprintable() and len(n) <= 60 else show(n) for n in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _shape(shape) -> str:
    return "×".join(str(d) for d in shape) if len(shape) else "a scalar"


def size_text(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
