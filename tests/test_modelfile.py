"""The .nnz model file: round trips, atomic saves, and a clear error for every broken file."""
import errno
import hashlib
import json
import math
import os
import zipfile

import numpy as np
import pytest
import safetensors.numpy

from nngraph import ModelFileError, modelfile

SPEC = {"nngraph": 1, "name": "tiny", "inputs": {"x": {"shape": [4]}},
        "layers": [{"op": "dense", "name": "fc", "units": 3}], "outputs": ["fc"]}


def tensors():
    rng = np.random.default_rng(0)
    params = {"fc.W": rng.standard_normal((4, 3)).astype(np.float32),
              "fc.b": np.zeros(3, np.float32)}
    optimizer = {"fc.W/m": np.zeros((4, 3), np.float32), "fc.b/m": np.zeros(3, np.float32)}
    state = {"bn.running_mean": np.arange(3, dtype=np.float64), "bn.count": np.array(7, np.int64)}
    return params, optimizer, state


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.nnz"
    params, optimizer, state = tensors()
    modelfile.save(path, SPEC, params, optimizer, state, {"epoch": 2})
    return path


def error_of(path) -> str:
    with pytest.raises(ModelFileError) as info:
        modelfile.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "Traceback" not in message and "BadZipFile" not in message
    return message


def members_of(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(path, replace=(), drop=(), meta_update=None, fix_hashes=False):
    """Rebuild the archive with members replaced or dropped; optionally keep its SHA-256s right."""
    members = members_of(path)
    members.update(dict(replace))
    for name in drop:
        del members[name]
    if meta_update or fix_hashes:
        meta = json.loads(members["meta.json"])
        meta.update(meta_update or {})
        if fix_hashes:
            meta["sha256"] = {n: hashlib.sha256(b).hexdigest() for n, b in members.items() if n != "meta.json"}
        members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


# ---------------------------------------------------------------------------- round trip

def test_round_trip_keeps_arrays_dtypes_and_nested_meta(tmp_path):
    path = tmp_path / "m.nnz"
    params = {"c1.W": np.random.default_rng(1).standard_normal((6, 1, 5, 5)),          # float64
              "c1.b": np.linspace(-1, 1, 6, dtype=np.float32),
              "emb.ids": np.arange(5, dtype=np.int32),
              "fc.W": np.arange(12, dtype=np.float32).reshape(3, 4).T,                 # not contiguous
              "fc.b": np.arange(3, dtype=">f4")}                                         # big-endian
    meta = {"epoch": 5, "step": np.int64(310), "dtype": "float32",
            "optimizer": {"type": "adam", "lr": 1e-3, "betas": [0.9, 0.999]},
            "history": {"loss": [2.3, 1.1, float("nan")], "accuracy": [0.1, 0.5, 0.7]},
            "rng": {"bit_generator": "PCG64", "state": {"state": 2**100 + 7, "inc": 3}}}
    modelfile.save(path, SPEC, params, {}, {}, meta)
    saved = modelfile.load(path)

    assert saved.spec == SPEC
    assert saved.params.keys() == params.keys()
    for name, array in params.items():
        got = saved.params[name]
        assert got.dtype == array.dtype.newbyteorder("=") and got.shape == array.shape
        np.testing.assert_array_equal(got, array)
        got[...] = 0                                  # loaded arrays are ordinary, writable arrays
    assert saved.optimizer == {} and saved.state == {}
    assert saved.meta["epoch"] == 5 and saved.meta["step"] == 310
    assert saved.meta["optimizer"] == meta["optimizer"] and saved.meta["rng"] == meta["rng"]
    assert math.isnan(saved.meta["history"]["loss"][2])
    assert saved.meta["format"] == "nngraph-model" and saved.meta["format_version"] == 1
    assert "nngraph_version" in saved.meta and "created" in saved.meta and "sha256" not in saved.meta


def test_round_trip_optimizer_and_state(model):
    params, optimizer, state = tensors()
    saved = modelfile.load(model)
    for mine, theirs in [(params, saved.params), (optimizer, saved.optimizer), (state, saved.state)]:
        assert mine.keys() == theirs.keys()
        for name in mine:
            np.testing.assert_array_equal(theirs[name], mine[name])
            assert theirs[name].dtype == mine[name].dtype
    assert saved.state["bn.count"].shape == ()


def test_save_replaces_reserved_meta_keys_and_overwrites(model):
    old = modelfile.load(model)
    modelfile.save(model, SPEC, old.params, {}, {}, {**old.meta, "format": "mine", "epoch": 3})
    saved = modelfile.load(model)
    assert saved.meta["format"] == "nngraph-model" and saved.meta["epoch"] == 3
    assert saved.optimizer == {}


def test_saved_file_has_ordinary_permissions(tmp_path, model):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert os.stat(model).st_mode == os.stat(plain).st_mode


@pytest.mark.parametrize("bad, words", [
    (np.zeros(3, np.float16), "dtype float16"),
    (np.zeros(3, bool), "dtype bool"),
    ([1.0, 2.0], "'fc.b' is a list, not a numpy array"),
])
def test_save_refuses_unstorable_arrays_before_touching_disk(tmp_path, bad, words):
    path = tmp_path / "m.nnz"
    with pytest.raises(ModelFileError, match=words) as info:
        modelfile.save(path, SPEC, {"fc.b": bad}, {}, {}, {})
    assert str(info.value).startswith(f"{path}: cannot save params")
    assert os.listdir(tmp_path) == []


def test_save_refuses_meta_that_is_not_json(tmp_path):
    with pytest.raises(ModelFileError, match="meta is not plain JSON data"):
        modelfile.save(tmp_path / "m.nnz", SPEC, {}, {}, {}, {"callback": print})
    assert os.listdir(tmp_path) == []


def test_save_into_missing_directory_names_it(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(ModelFileError, match=f"directory {missing} does not exist"):
        modelfile.save(missing / "m.nnz", SPEC, {}, {}, {}, {})


# ---------------------------------------------------------------------------- atomic save

def save_again(path):
    params, optimizer, state = tensors()
    params["fc.W"] = params["fc.W"] + 1
    modelfile.save(path, SPEC, params, optimizer, state, {"epoch": 3})


def test_exception_midway_keeps_old_file_and_leaves_no_temp(model, monkeypatch):
    before = model.read_bytes()
    real = zipfile.ZipFile.writestr
    calls = []

    def failing_writestr(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    with pytest.raises(RuntimeError, match="boom"):
        save_again(model)
    assert model.read_bytes() == before
    assert os.listdir(model.parent) == [model.name]


def test_disk_error_is_a_model_file_error_and_keeps_old_file(model, monkeypatch):
    before = model.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ModelFileError, match="No space left on device"):
        save_again(model)
    assert model.read_bytes() == before
    assert os.listdir(model.parent) == [model.name]


def test_interrupt_before_rename_keeps_old_file(model, monkeypatch):
    before = model.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_again(model)
    assert model.read_bytes() == before
    assert os.listdir(model.parent) == [model.name]


# ---------------------------------------------------------------------------- broken files

def test_missing_file(tmp_path):
    assert "no such file" in error_of(tmp_path / "nope.nnz")


def test_directory(tmp_path):
    assert "is a directory" in error_of(tmp_path)


def test_plain_text_file(tmp_path):
    path = tmp_path / "notes.nnz"
    path.write_text("these are not the weights you are looking for\n")
    assert "is not an nngraph model file" in error_of(path)


def test_empty_file(tmp_path):
    path = tmp_path / "m.nnz"
    path.write_bytes(b"")
    assert "is empty" in error_of(path)


@pytest.mark.parametrize("keep", [1, 3, 30, 100, 0.5, -22, -1])
def test_truncated_file(model, keep):
    data = model.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    model.write_bytes(data[:n])
    assert "truncated" in error_of(model)


@pytest.mark.parametrize("name", ["spec.json", "params.safetensors", "optimizer.safetensors",
                                  "state.safetensors", "meta.json"])
def test_missing_member(model, name):
    rewrite(model, drop=[name])
    assert f"member {name} is missing" in error_of(model)


def test_flipped_byte_in_tensor_data_fails_crc(model):
    data = bytearray(model.read_bytes())
    payload = members_of(model)["params.safetensors"]
    at = data.find(payload) + len(payload) - 5          # inside the array data, stored verbatim
    data[at] ^= 0x40
    model.write_bytes(bytes(data))
    assert "is corrupted: params.safetensors fails its CRC-32 checksum" in error_of(model)


def test_flipped_bytes_in_compressed_json(model):
    data = bytearray(model.read_bytes())
    with zipfile.ZipFile(model) as archive:
        info = archive.getinfo("spec.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for at in range(start + 2, start + 6):
        data[at] ^= 0xFF
    model.write_bytes(bytes(data))
    assert "is corrupted: spec.json" in error_of(model)


def test_member_replaced_without_updating_checksums(model):
    params, _, _ = tensors()
    params["fc.W"][0, 0] = 1000.0
    rewrite(model, replace={"params.safetensors": safetensors.numpy.save(params)})
    message = error_of(model)
    assert "params.safetensors does not match its SHA-256 checksum" in message


def test_every_single_byte_flip_is_caught_or_harmless(model):
    """Flip bytes all over the file: a load either fails cleanly or returns the same model."""
    good = model.read_bytes()
    expected = modelfile.load(model)
    for at in range(0, len(good), 3):
        data = bytearray(good)
        data[at] ^= 0x5A
        model.write_bytes(bytes(data))
        try:
            saved = modelfile.load(model)
        except ModelFileError as exc:
            assert str(exc).startswith(f"{model}: ")
            continue
        assert saved.spec == expected.spec                     # a date or attribute byte: harmless
        for name, array in expected.params.items():
            np.testing.assert_array_equal(saved.params[name], array)


@pytest.mark.parametrize("name", ["spec.json", "meta.json"])
def test_invalid_json(model, name):
    rewrite(model, replace={name: b'{"nngraph": 1,,}'}, fix_hashes=name != "meta.json")
    assert f"{name} is not valid JSON (line 1, column 15)" in error_of(model)


def test_json_that_is_not_an_object(model):
    rewrite(model, replace={"spec.json": b"[1, 2]"}, fix_hashes=True)
    assert "spec.json must hold a JSON object, not list" in error_of(model)


def test_wrong_format(model):
    rewrite(model, meta_update={"format": "keras-h5"})
    assert "is not an nngraph model file" in error_of(model)


def test_future_format_version(model):
    rewrite(model, meta_update={"format_version": 2, "nngraph_version": "9.0.0"})
    message = error_of(model)
    assert "written by a newer nngraph (9.0.0, model format version 2)" in message
    assert "reads format version 1" in message and "upgrade" in message


def test_invalid_format_version(model):
    rewrite(model, meta_update={"format_version": "one"})
    assert "invalid format_version 'one'" in error_of(model)


def test_safetensors_that_do_not_parse(model):
    rewrite(model, replace={"optimizer.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{broken"},
            fix_hashes=True)
    assert "optimizer.safetensors is not a readable safetensors table" in error_of(model)


def test_stored_dtype_nngraph_does_not_use(model):
    rewrite(model, replace={"state.safetensors": safetensors.numpy.save({"s": np.zeros(2, np.float16)})},
            fix_hashes=True)
    assert "'s' has dtype float16" in error_of(model)


def patch_declared_size(path, name, size):
    """Make the central directory claim `size` uncompressed bytes for member `name`."""
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + len(name)] != name.encode():
        entry = data.find(b"PK\x01\x02", entry + 4)
        assert entry >= 0
    data[entry + 24:entry + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_zip_bomb_ratio_is_refused_before_reading(model):
    patch_declared_size(model, "params.safetensors", 0xF000_0000)     # ~3.75 GiB from ~200 bytes
    message = error_of(model)
    assert "refused: member params.safetensors would expand" in message and "zip bomb" in message


def test_member_larger_than_limit_is_refused(model, monkeypatch):
    monkeypatch.setattr(modelfile, "MAX_MEMBER_BYTES", 1 << 20)
    monkeypatch.setattr(modelfile, "MAX_RATIO", 1 << 40)
    patch_declared_size(model, "meta.json", 3 << 20)
    assert "refused: member meta.json declares 3.0 MiB uncompressed (the limit is 1.0 MiB)" in error_of(model)


# ---------------------------------------------------------------------------- check_params

def test_check_params_accepts_a_match():
    params, _, _ = tensors()
    modelfile.check_params(params, {"fc.W": ((4, 3), np.float32), "fc.b": ([3], None)}, "m.nnz")


def test_check_params_lists_every_problem_in_one_message():
    saved = {"c1.W": np.zeros((6, 1, 5, 5), np.float32), "c1.b": np.zeros(6, np.float64),
             "old.W": np.zeros(3, np.float32), "s": np.zeros((), np.float32)}
    expected = {"c1.W": ((8, 1, 5, 5), "float32"), "c1.b": ((6,), "float32"),
                "fc.W": ((10, 2), "float32"), "s": ((1,), "float32")}
    with pytest.raises(ModelFileError) as info:
        modelfile.check_params(saved, expected, "lenet.nnz")
    assert str(info.value).splitlines() == [
        "lenet.nnz: parameters do not fit the network:",
        "  missing from the file: fc.W",
        "  in the file but not in the network: old.W",
        "  c1.W: file has 6×1×5×5, network expects 8×1×5×5",
        "  c1.b: file has float64, network expects float32",
        "  s: file has a scalar, network expects 1",
    ]


# ---------------------------------------------------------------------------- structure

def test_duplicate_member_is_refused(model):
    members = members_of(model)
    with zipfile.ZipFile(model, "a") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("params.safetensors", members["params.safetensors"])
    assert "member params.safetensors appears 2 times" in error_of(model)


def test_unexpected_member_is_refused(model):
    with zipfile.ZipFile(model, "a") as archive:
        archive.writestr("notes.txt", b"hello")
    assert "it has a member 'notes.txt'" in error_of(model)


def test_unsupported_compression_is_refused_before_reading(model):
    members = members_of(model)
    with zipfile.ZipFile(model, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_LZMA if name == "spec.json"
                             else zipfile.ZIP_STORED)
    assert "spec.json is stored in a way nngraph cannot read" in error_of(model)


def test_not_a_regular_file(tmp_path):
    fifo = tmp_path / "m.nnz"
    os.mkfifo(fifo)
    assert "is not a regular file" in error_of(fifo)


@pytest.mark.parametrize("text, words", [
    (b'{"format": "nngraph-model", "format": "x"}', "the key 'format' appears twice"),
    (b'{"epoch": ' + b"1" * 5000 + b"}", "a number too long to read"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
])
def test_meta_json_that_python_parses_badly(model, text, words):
    rewrite(model, replace={"meta.json": text})
    assert words in error_of(model)


def test_checksums_must_be_digests(model):
    meta = json.loads(members_of(model)["meta.json"])
    meta["sha256"]["state.safetensors"] = 5
    rewrite(model, replace={"meta.json": json.dumps(meta).encode()})
    assert "sha256 has no SHA-256 digest for state.safetensors, got 5" in error_of(model)


def test_save_refuses_json_that_load_would_refuse(tmp_path, monkeypatch):
    from nngraph import modelfile_members
    monkeypatch.setattr(modelfile_members, "MAX_JSON_BYTES", 1000)
    with pytest.raises(ModelFileError, match=r"cannot save: meta takes .* as JSON \(the limit is 1000 bytes\)"):
        modelfile.save(tmp_path / "m.nnz", SPEC, {}, {}, {}, {"history": {"loss": [0.5] * 1000}})
    assert os.listdir(tmp_path) == []


def header_with(path, name, edit, length=None):
    """Rewrite member `name`'s safetensors header with `edit(header)`, checksums kept right."""
    blob = members_of(path)[name]
    size = int.from_bytes(blob[:8], "little")
    header, data = json.loads(blob[8:8 + size]), blob[8 + size:]
    edit(header)
    text = json.dumps(header).encode()
    blob = (len(text) if length is None else length).to_bytes(8, "little") + text + data
    rewrite(path, replace={name: blob}, fix_hashes=True)


@pytest.mark.parametrize("edit, words", [
    (lambda h: h["fc.W"].update(data_offsets=[4, 48]), "'fc.W' is 4×3 of float32, 48 bytes, but has 44"),
    (lambda h: h["fc.W"].update(shape=[4, 3, 1, 0]), "'fc.W' is 4×3×1×0 of float32, 0 bytes"),
    (lambda h: h["fc.W"].update(shape=[2 ** 62, 2 ** 62]), "'fc.W' has a shape that is not"),
    (lambda h: h["fc.W"].update(dtype="XX"), "'fc.W' has an unknown dtype 'XX'"),
    (lambda h: h["fc.W"].update(data_offsets=[0, 2 ** 64]), "'fc.W' has data_offsets that are not"),
    (lambda h: h.pop("fc.b"), "its tensors take 48 bytes but it holds 60 bytes of data"),
    (lambda h: h.update(x=5), "'x' is not a tensor entry"),
])
def test_safetensors_header_that_lies(model, edit, words):
    header_with(model, "params.safetensors", edit)
    message = error_of(model)
    assert "params.safetensors is not a readable safetensors table" in message and words in message


def test_safetensors_header_length_that_lies(model):
    header_with(model, "params.safetensors", lambda h: None, length=2 ** 63)
    assert "its header claims 9223372036854775808 bytes, more than the member holds" in error_of(model)


EXPECTED = {"params": {"fc.W": ((4, 3), "float32"), "fc.b": ((3,), "float32")}}


def test_expected_tensors_load(model):
    seen = []

    def expect(spec, meta):
        seen.append((spec, meta["epoch"]))
        return EXPECTED

    saved = modelfile.load(model, expect)
    assert seen == [(SPEC, 2)] and set(saved.params) == {"fc.W", "fc.b"}


def test_expected_tensors_that_do_not_fit(model):
    expected = {"params": {"fc.W": ((5, 3), "float32"), "fc.b": ((3,), "float64"), "fc.c": ((1,), "float32")}}
    with pytest.raises(ModelFileError) as info:
        modelfile.load(model, lambda spec, meta: expected)
    assert str(info.value).splitlines() == [
        f"{model}: the tensors in params.safetensors do not fit the network:",
        "  missing from the file: fc.c",
        "  fc.W: file has 4×3, network expects 5×3",
        "  fc.b: file has float32, network expects float64",
    ]


def test_member_larger_than_the_expected_tensors_is_refused_unread(model, monkeypatch):
    params, optimizer, state = tensors()
    params["fc.W"] = np.zeros((400, 300), np.float32)          # 480,000 bytes
    modelfile.save(model, SPEC, params, optimizer, state, {})

    real_open = zipfile.ZipFile.open

    def open_json_only(self, name, *args, **kwargs):
        assert name.endswith(".json"), f"{name} was opened"
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", open_json_only)
    with pytest.raises(ModelFileError) as info:
        modelfile.load(model, lambda spec, meta: EXPECTED)
    assert "refused: params.safetensors declares 468.9 KiB uncompressed, but the 2 tensors " \
           "the network has for it take 60 bytes; nothing of it was read" in str(info.value)


def test_api_arguments_of_the_wrong_kind_get_nngraph_errors():
    import nngraph
    from nngraph.errors import ModelFileError, NNGraphError
    with pytest.raises(ModelFileError, match="expects a path to a .nnz file, got int"):
        nngraph.load_model(123)
    with pytest.raises(NNGraphError, match="dtype must be one of float32, float64"):
        nngraph.compile(os.path.join(os.path.dirname(__file__), "..", "specs", "xor_mlp.yaml"),
                        dtype="float16")
