"""Fuzzing `nngraph.load_model`: no model file, however broken, crashes it.

A few small real models are saved, then their files are mutated at every level, and each
mutant is loaded. A load either succeeds, giving a model that predicts, or raises
`ModelFileError` whose message starts with the file's path; it is fast, never reads a zip
bomb, and never touches the disk. The mutations:

    bytes     flip, overwrite, zero, insert, delete, truncate, append garbage
    zip       members dropped, duplicated, renamed, swapped, added, directories, deflated
              tensors, unknown compression, encryption flag, lying sizes, CRCs and offsets
    meta      meta.json fields set to wrong types and values (strings, negatives, NaN,
              infinities, 10**400, nesting), deleted, unknown optimizers and settings
    spec      spec.json edited at random, checksums updated (a deliberate edit)
    tensors   safetensors headers edited (names, shapes, dtypes, offsets, header length,
              metadata), data shortened or lengthened, NaN written into weights,
              checksums updated
    bombs     members that declare or really expand to hundreds of MiB

The normal suite runs CASES cases (split into CHUNKS tests for pytest-xdist). More:

    NNGRAPH_FUZZ_CASES=200000 python -m pytest -q -n 2 tests/test_fuzz_modelfile.py
    NNGRAPH_FUZZ_SEED=7 ...          # a different sequence of cases (default 0)

A failure lists every crashing case with its mutations, so one run shows every cause.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest

import nngraph
from nngraph import ModelFileError

CASES = int(os.environ.get("NNGRAPH_FUZZ_CASES", "3000"))
SEED = int(os.environ.get("NNGRAPH_FUZZ_SEED", "0"))
CHUNKS = 16
SLOW_CASE_S = 2.0          # a load that reads a bomb takes tens of seconds; a fair one, ms

MLP_BN = """
nngraph: 1
name: fuzz_bn
inputs:
  x: {shape: [6]}
  y: {shape: [], dtype: int64}
layers:
  - {op: dense, name: h, units: 5}
  - {op: batchnorm, name: bn}
  - {op: relu}
  - {op: dropout, rate: 0.2}
  - {op: dense, name: out, units: 3}
outputs: [out]
losses:
  - {op: softmax_cross_entropy, in: [out, y]}
train:
  optimizer: {type: adam, lr: 0.01}
  batch_size: 8
"""

XOR = """
nngraph: 1
name: fuzz_xor
inputs:
  x: {shape: [2]}
  t: {shape: [1]}
layers:
  - {op: dense, name: hidden, units: 4, activation: tanh}
  - {op: dense, name: out, units: 1, activation: sigmoid}
outputs: [out]
losses:
  - {op: squared_error, in: [out, t]}
train:
  optimizer: {type: sgd, lr: 0.5}
  batch_size: 4
"""

CONV = """
nngraph: 1
name: fuzz_conv
inputs:
  image: {shape: [1, 6, 6]}
  label: {shape: [], dtype: int64}
layers:
  - {op: conv2d, name: c1, filters: 2, kernel: 3, activation: relu}
  - {op: maxpool2d, size: 2}
  - {op: flatten}
  - {op: dense, name: fc, units: 3, use_bias: false}
outputs: [fc]
losses:
  - {op: softmax_cross_entropy, in: [fc, label]}
train:
  optimizer: {type: rmsprop, lr: 0.01}
  batch_size: 4
"""


def _data(net, n, rng):
    data = {}
    for name, spec in net.inputs.items():
        shape = (n, *spec.shape)
        if str(spec.dtype).startswith("int"):
            data[name] = rng.integers(0, 3, size=shape).astype(spec.dtype)
        else:
            data[name] = rng.normal(size=shape).astype(np.float32)
    return data


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """{name: bytes of a saved model file}: trained a little, so every table has values."""
    folder = tmp_path_factory.mktemp("originals")
    rng = np.random.default_rng(0)
    files = {}
    for name, text, dtype in [("bn", MLP_BN, "float32"), ("xor", XOR, "float64"),
                              ("conv", CONV, "float32")]:
        model = nngraph.compile(text, backend="reference", seed=1, dtype=dtype)
        model.fit(_data(model.net, 16, rng), epochs=2, verbose=0)
        path = folder / f"{name}.nnz"
        model.save(str(path))
        files[name] = path.read_bytes()
        nngraph.load_model(str(path), backend="reference")     # the originals load
    return files


# ---------------------------------------------------------------------------- zip by hand

class Entry:
    """One zip member as written: its bytes and everything its headers declare."""

    def __init__(self, name, data, method=0, level=6):
        self.name, self.data = name, data
        self.method = method
        self.raw = _deflate(data, level) if method == 8 else data
        self.crc = zlib.crc32(data)
        self.size, self.csize = len(data), len(self.raw)
        self.flags = 0
        self.local_name = None           # a different name in the local header
        self.offset_delta = 0            # a lying central-directory offset
        self.extra = b""                 # the central directory's extra field

    def clone(self):
        return copy.copy(self)


def _deflate(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def read_entries(blob: bytes) -> list:
    import io
    import zipfile
    entries = []
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        for info in archive.infolist():
            entries.append(Entry(info.filename, archive.read(info.filename),
                                 info.compress_type))
    return entries


def _u32(n: int) -> int:
    return max(0, min(n, 0xFFFFFFFF))


def write_zip(entries) -> bytes:
    out, central = bytearray(), bytearray()
    for e in entries:
        offset = len(out)
        name = (e.local_name or e.name).encode("utf-8", "surrogatepass")
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, e.flags, e.method, 0, 0x21,
                           e.crc & 0xFFFFFFFF, _u32(e.csize), _u32(e.size), len(name), 0) + name + e.raw
        cname = e.name.encode("utf-8", "surrogatepass")
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, e.flags, e.method,
                               0, 0x21, e.crc & 0xFFFFFFFF, _u32(e.csize), _u32(e.size),
                               len(cname), len(e.extra), 0, 0, 0, 0,
                               _u32(offset + e.offset_delta)) + cname + e.extra
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries) & 0xFFFF,
                       len(entries) & 0xFFFF, len(central), start, 0)
    return bytes(out)


# ---------------------------------------------------------------------------- wild values

RAW = "@@raw@@"      # a JSON string replaced, in the text, by a token json.dumps cannot write


def wild(rng: random.Random, depth=0):
    choices = [
        "abc", "", "x" * rng.choice([1, 100, 5000]), -1, 0, 1, 2, 7, 1.5, -0.0, 1e-300,
        -(2 ** 63), 2 ** 63, 2 ** 64 + 1, 10 ** 30, True, False, None, [], {}, [1, 2],
        {"a": 1}, float("nan"), float("inf"), float("-inf"), "float32", "float16",
        "reference", "cpu", "cuda", "sgd", "adam", "nesterov", "NaN", "\u0000", "\ud800x",
        RAW,
    ]
    value = rng.choice(choices)
    if depth < 2 and rng.random() < 0.1:
        value = rng.choice([[wild(rng, depth + 1)], {"k": wild(rng, depth + 1)}])
    return value


RAW_TOKENS = ["1e400", "-1e400", "1" * 5000, "-" + "9" * 400, "[" * 5000 + "]" * 5000,
              "NaN", "Infinity", "0x10", "01", "1.", "\"\\ud800\"", "tru", "[1,]"]


def dumps(value, rng: random.Random) -> bytes:
    text = json.dumps(value, indent=1)
    while f'"{RAW}"' in text:
        text = text.replace(f'"{RAW}"', rng.choice(RAW_TOKENS), 1)
    return text.encode("utf-8", "surrogatepass")


def mutate_json(value, rng: random.Random, known=()):
    """Replace, delete or add a value somewhere inside `value` (a dict); `known` are extra
    top-level keys worth trying."""
    value = copy.deepcopy(value)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        parent, key = _pick(value, rng)
        op = rng.random()
        if parent is None:
            continue
        if op < 0.6:
            parent[key] = wild(rng)
        elif op < 0.75 and isinstance(parent, dict):
            parent.pop(key, None)
        elif op < 0.85 and isinstance(parent, dict):
            parent[rng.choice(list(known) or ["extra"]) if rng.random() < 0.7 else "zz"] = wild(rng)
        elif isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = parent[key] + rng.choice([-1, 1, -parent[key] * 2, 0.5])
        elif isinstance(parent[key], list) and parent[key]:
            del parent[key][rng.randrange(len(parent[key]))]
        else:
            parent[key] = wild(rng)
    return value


def _pick(value, rng):
    """A random (container, key) inside `value`, top level more often than deep."""
    parent, key = None, None
    node = value
    while isinstance(node, (dict, list)) and node:
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, rng.choice(keys)
        node = node[key]
        if rng.random() < 0.35:
            break
    return parent, key


# ---------------------------------------------------------------------------- safetensors

def split_safetensors(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def join_safetensors(header, data, rng=None, length=None):
    text = dumps(header, rng) if rng else json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def mutate_tensors(blob, rng: random.Random, log):
    header, data = split_safetensors(blob)
    names = [k for k in header if k != "__metadata__"]
    op = rng.randrange(12)
    length = None
    if op == 0 and names:
        entry = header[rng.choice(names)]
        entry["shape"] = rng.choice([entry["shape"] + [1], entry["shape"][:-1], [2 ** 40],
                                     [-1], [0], ["a"], [1.5], None, 3, [2 ** 31] * 3,
                                     [d + 1 for d in entry["shape"]], [1] * 70])
        log.append(f"shape {entry['shape']!r}"[:80])
    elif op == 1 and names:
        entry = header[rng.choice(names)]
        entry["dtype"] = rng.choice(["F32", "F64", "I64", "I32", "F16", "BF16", "BOOL", "U8",
                                     "I8", "F8_E4M3", "XX", 5, None, "f32"])
        log.append(f"dtype {entry['dtype']!r}")
    elif op == 2 and names:
        entry = header[rng.choice(names)]
        b, e = entry["data_offsets"]
        entry["data_offsets"] = rng.choice([[b, e + 4], [b + 4, e], [e, b], [-4, e], [b, 2 ** 62],
                                            [b, 2 ** 64], [b], [b, e, 0], "0-4", None,
                                            [b + 1, e + 1], [0, e - b], [b * 1.0, e]])
        log.append(f"offsets {entry['data_offsets']!r}")
    elif op == 3 and names:
        header.pop(rng.choice(names))
        log.append("tensor removed")
    elif op == 4 and names:
        name = rng.choice(names)
        header[rng.choice(["extra", name + "x", "", "\u00e9"])] = dict(header[name])
        log.append("tensor added")
    elif op == 5:
        header["__metadata__"] = rng.choice([{"a": "b"}, {"a": 1}, [], "x", None, {"": ""}])
        log.append(f"metadata {header['__metadata__']!r}")
    elif op == 6:
        length = rng.choice([0, 1, 7, len(json.dumps(header)) + 1000, 2 ** 32, 2 ** 63,
                             2 ** 64 - 1, 100 << 20])
        log.append(f"header length {length}")
    elif op == 7:
        cut = rng.randrange(0, len(data) + 1)
        data = data[:cut] if rng.random() < 0.5 else data + os.urandom(rng.choice([1, 4, 8, 1000]))
        log.append(f"data length {len(data)}")
    elif op == 8 and names:
        name = rng.choice(names)
        entry = header[name]
        b, e = entry["data_offsets"]
        if entry["dtype"] in ("F32", "F64") and e > b:
            size = 4 if entry["dtype"] == "F32" else 8
            at = b + size * rng.randrange((e - b) // size)
            value = rng.choice([float("nan"), float("inf"), -float("inf"), 1e30])
            packed = struct.pack("<f" if size == 4 else "<d", value)
            data = data[:at] + packed + data[at + size:]
            log.append(f"{name} holds {value}")
    elif op == 9:
        header = rng.choice([[], "x", 5, None, {"a": 5}, {"a": {"dtype": "F32"}}])
        log.append(f"header {header!r}")
    elif op == 10 and names:
        name = rng.choice(names)
        header[name] = mutate_json({"v": header[name]}, rng).get("v") if rng.random() < 0.5 else wild(rng)
        log.append(f"entry {name} {header[name]!r}"[:80])
    else:
        raw = bytearray(json.dumps(header).encode())
        if raw:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        raw = bytes(raw) + b" " * (-len(raw) % 8)
        log.append("header byte")
        return struct.pack("<Q", len(raw)) + raw + data
    return join_safetensors(header, data, rng, length)


# ---------------------------------------------------------------------------- mutators

TENSOR_MEMBERS = ["params.safetensors", "optimizer.safetensors", "state.safetensors"]
MEMBERS = ["spec.json", *TENSOR_MEMBERS, "meta.json"]
META_KEYS = ["step", "epoch", "seed", "dtype", "backend", "history", "optimizer", "name",
             "spec_file", "format", "format_version", "nngraph_version", "created", "sha256"]


def fix_hashes(entries):
    by_name = {e.name: e for e in entries}
    meta_entry = by_name.get("meta.json")
    if meta_entry is None:
        return
    try:
        meta = json.loads(meta_entry.data)
        meta["sha256"] = {e.name: hashlib.sha256(e.data).hexdigest()
                          for e in entries if e.name != "meta.json"}
    except (ValueError, TypeError, KeyError, RecursionError):
        return
    replace(meta_entry, json.dumps(meta, indent=1).encode())


def replace(entry, data):
    fresh = Entry(entry.name, data, entry.method)
    entry.data, entry.raw, entry.crc, entry.size, entry.csize = (
        fresh.data, fresh.raw, fresh.crc, fresh.size, fresh.csize)


def mutate_bytes(blob, rng, log):
    data = bytearray(blob)
    op = rng.randrange(7)
    at = rng.randrange(len(data))
    if op == 0:
        for _ in range(rng.choice([1, 1, 2, 8])):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        log.append("bit flips")
    elif op == 1:
        n = rng.choice([1, 4, 16, 200])
        data[at:at + n] = os.urandom(min(n, len(data) - at))
        log.append(f"overwrite {n} at {at}")
    elif op == 2:
        n = rng.choice([4, 64, 1000])
        data[at:at + n] = bytes(min(n, len(data) - at))
        log.append(f"zero {n} at {at}")
    elif op == 3:
        data[at:at] = os.urandom(rng.choice([1, 3, 100]))
        log.append(f"insert at {at}")
    elif op == 4:
        del data[at:at + rng.choice([1, 5, 100])]
        log.append(f"delete at {at}")
    elif op == 5:
        data = data[:at]
        log.append(f"truncate at {at}")
    else:
        data += os.urandom(rng.choice([1, 22, 1000]))
        log.append("append")
    return bytes(data)


def mutate_members(entries, rng, log):
    op = rng.randrange(16)
    e = rng.choice(entries)
    if op == 0:
        entries.remove(e)
        log.append(f"drop {e.name}")
    elif op == 1:
        twin = e.clone()
        if rng.random() < 0.5:
            replace(twin, rng.choice(entries).data)
        entries.insert(rng.randrange(len(entries) + 1), twin)
        log.append(f"duplicate {e.name}")
    elif op == 2:
        old, e.name = e.name, rng.choice(MEMBERS + ["x.json", "PARAMS.safetensors", "a/",
                                                    "../evil", "/abs", "spec.json/", ""])
        log.append(f"rename {old} -> {e.name}")
    elif op == 3:
        other = rng.choice(entries)
        e.name, other.name = other.name, e.name
        log.append(f"swap {e.name} {other.name}")
    elif op == 4:
        entries.insert(rng.randrange(len(entries) + 1),
                       Entry(rng.choice(["extra.bin", "dir/", "notes.txt"]), os.urandom(10)))
        log.append("extra member")
    elif op == 5:
        e.raw = _deflate(e.data) if e.method == 0 else e.data
        e.method = 8 if e.method == 0 else 0
        e.csize = len(e.raw)
        log.append(f"{e.name} method {e.method}")
    elif op == 6:
        e.method = rng.choice([1, 9, 12, 14, 93, 99, 0xFFFF])
        log.append(f"{e.name} method {e.method}")
    elif op == 7:
        e.flags |= rng.choice([1, 8, 0x40, 0x2000])
        log.append(f"{e.name} flags {e.flags}")
    elif op == 8:
        e.size = rng.choice([0, 1, e.size - 1, e.size + 1, e.size * 2, 0xFFFFFFFF, 300 << 20])
        log.append(f"{e.name} declares size {e.size}")
    elif op == 9:
        e.csize = rng.choice([0, 1, e.csize - 1, e.csize + 1, 0xFFFFFFFF])
        log.append(f"{e.name} declares csize {e.csize}")
    elif op == 10:
        e.crc ^= 1 << rng.randrange(32)
        log.append(f"{e.name} crc")
    elif op == 11:
        e.offset_delta = rng.choice([-1, 1, -30, 10 ** 6, -(10 ** 6)])
        log.append(f"{e.name} offset {e.offset_delta}")
    elif op == 12:
        e.local_name = rng.choice(["other.json", e.name + "x", ""])
        log.append(f"{e.name} local name {e.local_name}")
    elif op == 13:
        # zip64: sizes and offset moved to an extra field (0xFFFFFFFF in the header), or
        # an extra field that is garbage
        sizes = [rng.choice([e.size, 2 ** 62, 2 ** 64 - 1, 0]), rng.choice([e.csize, 2 ** 40])]
        if rng.random() < 0.5:
            e.size, e.csize = 0xFFFFFFFF, 0xFFFFFFFF
            e.extra = struct.pack("<HHQQ", 1, 16, *sizes)
        else:
            e.extra = rng.choice([os.urandom(7), b"\x01\x00\x08\x00", struct.pack("<HH", 1, 200)])
        log.append(f"{e.name} extra {e.extra[:20]!r}")
    elif op == 14:
        e.flags |= 0x800               # "the name is UTF-8", on a name that is not
        e.name = rng.choice(["\udcff" + e.name, e.name + "\ud800"])
        log.append(f"{e.name!r} not UTF-8")
    else:
        rng.shuffle(entries)
        log.append("reorder")


def mutate_meta(entries, rng, log):
    e = next((x for x in entries if x.name == "meta.json"), None)
    if e is None:
        return
    meta = json.loads(e.data)
    op = rng.random()
    if op < 0.55:
        key = rng.choice(META_KEYS)
        if rng.random() < 0.15:
            meta.pop(key, None)
            log.append(f"meta -{key}")
        else:
            meta[key] = wild(rng)
            log.append(f"meta {key}={meta[key]!r}"[:100])
    elif op < 0.75 and isinstance(meta.get("optimizer"), dict):
        opt = meta["optimizer"]
        key = rng.choice(["type", "lr", "momentum", "nesterov", "decay", "beta1", "beta2",
                          "eps", "rho", "zz"])
        opt[key] = rng.choice([wild(rng), "adamw", "rmsprop", "adagrad", -0.1, 1.0, 2.0,
                               0.0, 1e-3, 1e308])
        log.append(f"optimizer {key}={opt[key]!r}"[:100])
    elif op < 0.85 and isinstance(meta.get("history"), dict) and meta["history"]:
        hist = meta["history"]
        key = rng.choice(list(hist))
        hist[key] = rng.choice([wild(rng), [wild(rng)], hist[key] + [wild(rng)], {}])
        log.append(f"history {key}={hist[key]!r}"[:100])
    else:
        meta = mutate_json(meta, rng, META_KEYS)
        log.append("meta json edit")
    replace(e, dumps(meta, rng))


def mutate_spec(entries, rng, log):
    e = next((x for x in entries if x.name == "spec.json"), None)
    if e is None:
        return
    spec = json.loads(e.data)
    layers = spec.get("layers") if isinstance(spec, dict) else None
    if isinstance(layers, list) and layers and isinstance(layers[0], dict) and rng.random() < 0.3:
        layers[0]["name"] = rng.choice(["\ud800x", "a.b", "a/b", "", " ", "x" * 3000, "\u00e9",
                                        "\U0001f600", "__metadata__", "h\n", "W"])
        log.append(f"layer renamed {layers[0]['name'][:20]!r}")
    else:
        spec = mutate_json(spec, rng, ["nngraph", "name", "inputs", "layers", "outputs",
                                        "losses", "train", "blocks"])
        log.append("spec edit")
    replace(e, dumps(spec, rng))
    if rng.random() < 0.85:
        fix_hashes(entries)


def mutate_tensor_member(entries, rng, log):
    candidates = [x for x in entries if x.name in TENSOR_MEMBERS]
    if not candidates:
        return
    e = rng.choice(candidates)
    log.append(e.name)
    replace(e, mutate_tensors(e.data, rng, log))
    if rng.random() < 0.9:
        fix_hashes(entries)


_BOMB = {}


def bomb_member(name, size, prefix=b""):
    """A deflated member that really expands to `prefix` and then zeros, `size` bytes of
    them (a multiple of 1 MiB), made without compressing them all."""
    if (size, prefix) not in _BOMB:
        chunk = bytes(1 << 20)
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        head = c.compress(prefix + chunk) + c.flush(zlib.Z_FULL_FLUSH)
        block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
        assert block == c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
        count = size >> 20
        raw = head + block * (count - 1) + c.flush()
        crc = zlib.crc32(prefix)
        for _ in range(count):
            crc = zlib.crc32(chunk, crc)
        _BOMB[size, prefix] = (raw, crc)
    raw, crc = _BOMB[size, prefix]
    e = Entry(name, b"")
    e.method, e.raw, e.crc, e.size, e.csize = 8, raw, crc, len(prefix) + size, len(raw)
    return e


def mutate_bomb(entries, rng, log):
    name = rng.choice(MEMBERS)
    size = rng.choice([64 << 20, 256 << 20])
    prefix = b""
    if name in TENSOR_MEMBERS and rng.random() < 0.7:
        count = (size // 4)
        header = {"w": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}
        prefix = join_safetensors(header, b"")
        size = count * 4
    bomb = bomb_member(name, size, prefix)
    entries[:] = [x for x in entries if x.name != name] + [bomb]
    log.append(f"bomb {name} {size >> 20} MiB")


def mutate_from_another(entries, rng, log, others):
    """A member of another model's file in place of this one's (checksums mostly updated):
    well formed, but for a different network or optimizer."""
    other = read_entries(rng.choice(others))
    name = rng.choice(MEMBERS)
    theirs = next((x for x in other if x.name == name), None)
    for i, e in enumerate(entries):
        if e.name == name and theirs is not None:
            entries[i] = theirs
    if name == "meta.json":
        meta = json.loads(theirs.data)
        mine = next((x for x in entries if x.name == "spec.json"), None)
        if mine is not None and rng.random() < 0.5:
            replace(theirs, json.dumps({**meta, "optimizer": json.loads(mine.data).get(
                "train", {}).get("optimizer")}).encode())
    log.append(f"{name} from another model")
    if rng.random() < 0.9:
        fix_hashes(entries)


MUTATORS = [(mutate_members, 3), (mutate_meta, 4), (mutate_spec, 2),
            (mutate_tensor_member, 4), (mutate_from_another, 1), (mutate_bomb, 0.15)]


def make_case(originals, rng: random.Random):
    name = rng.choice(sorted(originals))
    log = [name]
    blob = originals[name]
    if rng.random() < 0.2:
        return mutate_bytes(blob, rng, log), log
    entries = read_entries(blob)
    funcs, weights = zip(*MUTATORS)
    others = [originals[k] for k in sorted(originals) if k != name]
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if not entries:
            break
        try:
            func = rng.choices(funcs, weights)[0]
            if func is mutate_from_another:
                func(entries, rng, log, others)
            else:
                func(entries, rng, log)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, struct.error,
                RecursionError, UnicodeError):
            log.append("(a mutation of a mutant that no longer parses: skipped)")
    blob = write_zip(entries)
    if rng.random() < 0.05:
        blob = mutate_bytes(blob, rng, log)
    return blob, log


# ---------------------------------------------------------------------------- running

def load_and_check(path, blob):
    """None when the load behaved (succeeded, or refused with a ModelFileError naming the
    file, quickly, touching nothing); else what went wrong."""
    listing = sorted(os.listdir(path.parent))
    t0 = time.perf_counter()
    try:
        model = nngraph.load_model(str(path), backend="reference")
    except ModelFileError as exc:
        problem = None if str(exc).startswith(f"{path}: ") else f"message without the path: {exc}"
        model = None
    except RecursionError:
        return "RecursionError"
    except Exception as exc:     # noqa: BLE001 - this is what the test looks for
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    else:
        problem = _use(model)
    elapsed = time.perf_counter() - t0
    if elapsed > SLOW_CASE_S:
        problem = f"slow: {elapsed:.1f}s"
    if path.read_bytes() != blob or sorted(os.listdir(path.parent)) != listing:
        problem = "the load changed the disk"
    return problem


def _use(model):
    """A model that loads must also predict (or refuse data with nngraph's own error)."""
    rng = np.random.default_rng(0)
    try:
        model.predict({k: v for k, v in _data(model.net, 2, rng).items()
                       if k in model.net.feature_inputs})
    except nngraph.NNGraphError:
        pass
    except Exception as exc:     # noqa: BLE001
        return f"loaded, then predict crashed: {type(exc).__name__}: {str(exc)[:200]}"
    return None


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_no_model_file_crashes_load_model(originals, tmp_path, chunk):
    failures = {}                  # {the start of what went wrong: [cases]}
    path = tmp_path / "fuzz.nnz"
    for case in range(chunk, CASES, CHUNKS):
        blob, log = make_case(originals, random.Random(f"{SEED}:{case}"))
        path.write_bytes(blob)
        problem = load_and_check(path, blob)
        if problem:
            failures.setdefault(problem[:70], []).append(f"case {case}: {' / '.join(log)}: {problem}")
    if failures:
        lines = [f"{len(v)}x {k}\n    " + "\n    ".join(v[:3]) for k, v in failures.items()]
        pytest.fail(f"{sum(map(len, failures.values()))} crashing cases (NNGRAPH_FUZZ_SEED={SEED}):\n"
                    + "\n".join(lines))


# ---------------------------------------------------------------------------- named cases

def test_zip_bomb_is_refused_quickly_and_without_reading_it(originals, tmp_path):
    """The issue's file: a 1.5 MiB member that expands 1000-fold to 1.5 GiB of weights."""
    entries = read_entries(originals["bn"])
    count = (1536 << 20) // 4
    header = {"h.W": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}
    bomb = bomb_member("params.safetensors", count * 4, join_safetensors(header, b""))
    entries = [e for e in entries if e.name != "params.safetensors"] + [bomb]
    path = tmp_path / "bomb.nnz"
    path.write_bytes(write_zip(entries))
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ModelFileError) as info:
            nngraph.load_model(str(path), backend="reference")
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value).startswith(f"{path}: ")
    assert "params.safetensors" in str(info.value)
    assert elapsed < 0.5, elapsed
    assert peak < 32 << 20, peak


def test_bomb_that_lies_about_its_size_stops_at_the_declared_size(originals, tmp_path):
    """The same stream declared as small as the real weights: reading stops there."""
    entries = read_entries(originals["bn"])
    real = next(e for e in entries if e.name == "params.safetensors")
    bomb = bomb_member("params.safetensors", 256 << 20)
    bomb.size, bomb.crc = real.size, real.crc
    entries = [e for e in entries if e.name != "params.safetensors"] + [bomb]
    path = tmp_path / "bomb.nnz"
    path.write_bytes(write_zip(entries))
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match="params.safetensors"):
        nngraph.load_model(str(path), backend="reference")
    assert time.perf_counter() - t0 < 0.5


def _with_meta(originals, tmp_path, **changes):
    entries = read_entries(originals["bn"])
    meta_entry = next(e for e in entries if e.name == "meta.json")
    meta = json.loads(meta_entry.data)
    for key, value in changes.items():
        if key.startswith("optimizer_"):
            meta["optimizer"][key[len("optimizer_"):]] = value
        else:
            meta[key] = value
    replace(meta_entry, json.dumps(meta).encode())
    path = tmp_path / "m.nnz"
    path.write_bytes(write_zip(entries))
    return path


@pytest.mark.parametrize("changes, words", [
    ({"step": "abc"}, "step"),
    ({"step": -1}, "step"),
    ({"epoch": math.inf}, "epoch"),
    ({"epoch": 2.0}, "epoch"),
    ({"seed": True}, "seed"),
    ({"history": 5}, "history"),
    ({"history": {"loss": ["a"]}}, "history"),
    ({"dtype": "float16"}, "dtype"),
    ({"backend": "tpu"}, "backend"),
    ({"optimizer": {"type": "adamw", "lr": 0.1}}, "adamw"),
    ({"optimizer": "adam"}, "optimizer"),
    ({"optimizer_lr": "x"}, "lr"),
    ({"optimizer_lr": -0.5}, "lr"),
    ({"optimizer_lr": math.nan}, "lr"),
    ({"optimizer_beta1": 1.5}, "beta1"),
    ({"optimizer_momentum": 0.9}, "momentum"),
    ({"spec_file": 3}, "spec_file"),
])
def test_bad_meta_fields_are_refused_at_load_naming_the_field(originals, tmp_path, changes, words):
    path = _with_meta(originals, tmp_path, **changes)
    with pytest.raises(ModelFileError) as info:
        nngraph.load_model(str(path), backend="reference")
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "meta.json" in message and words in message


def test_bad_lr_cannot_reach_fit(originals, tmp_path):
    """Before, `lr: "x"` loaded and then failed inside fit with a numpy TypeError."""
    path = _with_meta(originals, tmp_path, optimizer_lr="x")
    with pytest.raises(ModelFileError, match=r"optimizer\.lr.*'x'"):
        nngraph.load_model(str(path), backend="reference")


def test_nan_weights_are_refused(originals, tmp_path):
    entries = read_entries(originals["bn"])
    e = next(x for x in entries if x.name == "params.safetensors")
    header, data = split_safetensors(e.data)
    b, _ = header["h.W"]["data_offsets"]
    data = data[:b] + struct.pack("<f", float("nan")) + data[b + 4:]
    replace(e, join_safetensors(header, data))
    fix_hashes(entries)
    path = tmp_path / "m.nnz"
    path.write_bytes(write_zip(entries))
    with pytest.raises(ModelFileError, match="h.W.*NaN"):
        nngraph.load_model(str(path), backend="reference")


def test_cli_commands_report_a_broken_model_file(originals, tmp_path, capsys):
    from nngraph.cli import main
    path = _with_meta(originals, tmp_path, epoch="three")
    spec = tmp_path / "spec.yaml"
    spec.write_text(MLP_BN)
    for argv in (["eval", str(path)], ["predict", str(path)],
                 ["train", str(spec), "--resume", str(path), "--backend", "reference"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: ") and "epoch" in err and "Traceback" not in err


@pytest.mark.skipif(__import__("nngraph.backends.cuda").backends.cuda.device_status()[0],
                    reason="this machine can run CUDA kernels")
def test_backend_the_file_names_but_this_machine_lacks(originals, tmp_path):
    path = _with_meta(originals, tmp_path, backend="cuda")
    with pytest.raises(ModelFileError, match=f"^{path}: backend 'cuda' needs an NVIDIA GPU") \
            as info:
        nngraph.load_model(str(path))
    assert "backend='cpu') loads it on the CPU" in str(info.value)
    assert nngraph.load_model(str(path), backend="reference").backend == "reference"


def test_a_model_with_meta_and_optimizer_state_round_trips(originals, tmp_path):
    """What load_model checks is what save_model writes: every original loads as it was."""
    for name, blob in originals.items():
        path = tmp_path / f"{name}.nnz"
        path.write_bytes(blob)
        model = nngraph.load_model(str(path), backend="reference")
        assert model.epoch == 2 and model.step > 0 and len(model.history["loss"]) == 2
        model.save(str(tmp_path / "again.nnz"))
        again = nngraph.load_model(str(tmp_path / "again.nnz"), backend="reference")
        for table in ("params", "opt_state", "flat_state"):
            mine, theirs = getattr(model, table), getattr(again, table)
            assert mine.keys() == theirs.keys()
            for k in mine:
                np.testing.assert_array_equal(mine[k], theirs[k])
