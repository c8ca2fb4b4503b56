"""train.data.images (a folder of class sub-folders, nngraph/image_folder.py) and
tools/idx_to_npz.py (MNIST's IDX files to an npz)."""
import gzip
import importlib.util
import os
import sys

import numpy as np
import pytest

import nngraph
from nngraph import DataError, SpecError
from nngraph.data import load_splits, load_training_data

Image = pytest.importorskip("PIL.Image")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_images(folder, counts, size=(6, 4), mode="L", seed=0):
    """{class name: n} images of `size` (width, height) in `mode`, each class's pixels drawn
    around its own level; returns {path: pixels as written, (H, W) or (H, W, 3) uint8}."""
    rng = np.random.default_rng(seed)
    written = {}
    for k, (name, n) in enumerate(counts.items()):
        os.makedirs(folder / name, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            pixels = np.clip(rng.normal(40 + 80 * k, 20, shape), 0, 255).astype(np.uint8)
            path = folder / name / f"{i:03d}.png"
            Image.fromarray(pixels).save(path)          # uint8 (H, W) is L, (H, W, 3) RGB
            written[str(path)] = pixels
    return written


def net_text(data, image="[1, 4, 6]", classes=3):
    return ("nngraph: 1\nname: folder\n"
            f"inputs:\n  image: {{shape: {image}}}\n  label: {{shape: [], dtype: int64}}\n"
            "layers:\n  - {op: flatten}\n"
            f"  - {{op: dense, name: out, units: {classes}}}\n"
            "outputs: [out]\nlosses:\n  - {op: softmax_cross_entropy, in: [out, label]}\n"
            "train:\n  optimizer: {type: sgd, lr: 0.1}\n  batch_size: 8\n  epochs: 1\n"
            f"  data: {data}\n")


def spec_file(tmp_path, data, **kw):
    path = tmp_path / "net.yaml"
    path.write_text(net_text(data, **kw))
    return str(path)


# ---------------------------------------------------------------- reading a folder

def test_an_images_folder_trains_through_compile_and_fit(tmp_path, monkeypatch):
    written = write_images(tmp_path / "shapes", {"b_square": 8, "a_circle": 8, "c_line": 8})
    path = spec_file(tmp_path, "{images: shapes, validation_split: 0.25}")
    monkeypatch.chdir(ROOT)                       # the folder resolves against the spec's
    model = nngraph.compile(path, backend="reference", seed=0)
    history = model.fit(verbose=0)
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    assert "val_loss" in history

    splits = load_splits(nngraph.load(path))
    assert splits.classes == ("a_circle", "b_square", "c_line")       # sorted names
    assert len(splits.train["label"]) == 18 and len(splits.validation["label"]) == 6
    assert np.bincount(splits.validation["label"]).tolist() == [2, 2, 2]      # stratified
    whole = load_splits(nngraph.load(path), {"validation_split": None, "shuffle": False})
    assert whole.train["image"].shape == (24, 1, 4, 6)
    assert whole.train["image"].dtype == np.float32
    assert whole.train["label"].tolist() == [0] * 8 + [1] * 8 + [2] * 8
    first = written[str(tmp_path / "shapes" / "a_circle" / "000.png")]
    np.testing.assert_array_equal(whole.train["image"][0, 0],
                                  first.astype(np.float32) / np.float32(255))


def test_rgb_and_grayscale_follow_the_input_channels(tmp_path):
    written = write_images(tmp_path / "d", {"x": 2, "y": 2}, mode="RGB")
    rgb = nngraph.load(net_text(f"{{images: {tmp_path / 'd'}, shuffle: false}}",
                                image="[3, 4, 6]", classes=2))
    train, _ = load_training_data(rgb)
    pixels = written[str(tmp_path / "d" / "x" / "000.png")]
    assert train["image"].shape == (4, 3, 4, 6)
    np.testing.assert_array_equal(train["image"][0] * 255, pixels.transpose(2, 0, 1))
    gray = nngraph.load(net_text(f"{{images: {tmp_path / 'd'}, shuffle: false}}", classes=2))
    train, _ = load_training_data(gray)
    expected = np.asarray(Image.fromarray(pixels, "RGB").convert("L"))
    np.testing.assert_array_equal(np.round(train["image"][0, 0] * 255), expected)


def test_a_float64_model_gets_pixels_divided_in_float64(tmp_path):
    written = write_images(tmp_path / "d", {"x": 2, "y": 2})
    model = nngraph.compile(net_text(f"{{images: {tmp_path / 'd'}, shuffle: false}}",
                                     classes=2), backend="reference", dtype="float64")
    train, _ = load_training_data(model.net)
    assert train["image"].dtype == np.float64
    first = written[str(tmp_path / "d" / "x" / "000.png")]
    np.testing.assert_array_equal(train["image"][0, 0], first / 255.0)


def test_hidden_nested_and_other_files(tmp_path):
    write_images(tmp_path / "d", {"x": 2, "y": 1})
    write_images(tmp_path / "d" / "y" / "more", {"deeper": 2})     # y/more/deeper/*.png
    write_images(tmp_path / "d" / ".cache", {"z": 3})               # hidden: skipped
    (tmp_path / "d" / "x" / "notes.txt").write_text("not an image")
    (tmp_path / "d" / "x" / ".hidden.png").write_bytes(b"junk")
    (tmp_path / "d" / "README.md").write_text("a stray file beside the classes")
    net = nngraph.load(net_text(f"{{images: {tmp_path / 'd'}}}", classes=2))
    splits = load_splits(net)
    assert splits.classes == ("x", "y")
    assert np.bincount(splits.train["label"]).tolist() == [2, 3]


def test_resize(tmp_path):
    write_images(tmp_path / "d", {"x": 2}, size=(6, 4))
    write_images(tmp_path / "d", {"y": 2}, size=(12, 8))
    net = nngraph.load(net_text(f"{{images: {tmp_path / 'd'}, resize: true}}", classes=2))
    train, _ = load_training_data(net)
    assert train["image"].shape == (4, 1, 4, 6)
    assert 0 <= train["image"].min() and train["image"].max() <= 1
    with pytest.raises(DataError, match=r"train.data.images: .*d/y/000.png: 12x8 pixels "
                                        r"\(width x height\), but input 'image' of shape "
                                        r"\[1, 4, 6\] takes 6x4; the 2 image\(s\) read before "
                                        r"it are 6x4. Add resize: true"):
        load_training_data(net, {"resize": None})


@pytest.mark.parametrize("make, message", [
    (lambda d: None, r"d: no such folder"),
    (lambda d: d.write_bytes(b"x"), r"d: not a folder; images: takes a folder"),
    (lambda d: d.mkdir(), r"d: the folder has no class sub-folders: put each class's images"),
    (lambda d: (d.mkdir(), Image.new("L", (6, 4)).save(d / "loose.png")),
     r"the folder holds 1 image\(s\) but no class sub-folders"),
    (lambda d: (write_images(d, {"x": 1}), Image.new("L", (6, 4)).save(d / "loose.png")),
     r"d/loose.png: an image outside the class sub-folders \(x\), so it has no class"),
    (lambda d: (write_images(d, {"x": 1}), (d / "y").mkdir()),
     r"d/y: class sub-folder 'y' holds no images"),
    (lambda d: (write_images(d, {"x": 1}), (d / "x" / "bad.png").write_bytes(b"not a png")),
     r"d/x/bad.png: cannot read it as an image"),
    (lambda d: write_images(d, {"x": 1}, size=(7, 5)),
     r"d/x/000.png: 7x5 pixels .* takes 6x4\. Add resize: true .* or declare the input as "
     r"\[1, 5, 7\]"),
    (lambda d: (write_images(d, {"x": 1}),
                Image.fromarray(np.zeros((4, 6), np.uint16)).save(d / "x" / "deep.png")),
     r"d/x/deep.png: a I;16 image \(more than 8 bits per pixel\)"),
])
def test_bad_folders(tmp_path, make, message):
    folder = tmp_path / "d"
    make(folder)
    net = nngraph.load(net_text(f"{{images: {folder}}}", classes=2))
    with pytest.raises(DataError, match="train.data.images: .*" + message):
        load_training_data(net)


def test_the_input_must_take_images(tmp_path):
    write_images(tmp_path / "d", {"x": 1})
    net = nngraph.load(net_text(f"{{images: {tmp_path / 'd'}}}", image="[24]", classes=2))
    with pytest.raises(DataError, match=r"images feed input 'image', declared with shape \[24\]; "
                                        r"images need an input of shape \[channels, height, "
                                        r"width\].*\{op: flatten\}"):
        load_training_data(net)


def test_more_classes_than_the_network_scores_names_them(tmp_path):
    write_images(tmp_path / "d", {"a": 2, "b": 2, "c": 2})
    net = nngraph.load(net_text(f"{{images: {tmp_path / 'd'}}}", classes=2))
    with pytest.raises(DataError, match=r"\(image folder .*d of 3 classes \(a, b, c\)\): value 2 .*outside \[0, 2\)"):
        load_training_data(net)


def test_spec_checks_and_options(tmp_path):
    with pytest.raises(SpecError, match=r"exactly one of dataset, npz, csv, images or inline; "
                                        r"got npz, images"):
        nngraph.load(net_text("{images: d, npz: d.npz}"))
    np.savez(tmp_path / "d.npz", image=np.zeros((2, 1, 4, 6)), label=np.array([0, 1]))
    net = nngraph.load(net_text(f"{{npz: {tmp_path / 'd.npz'}, resize: true}}", classes=2))
    with pytest.raises(DataError, match="train.data.resize resizes the images of an images "
                                        "folder; it means nothing for npz data"):
        load_training_data(net)


def test_missing_pillow_says_how_to_install_it(tmp_path, monkeypatch):
    write_images(tmp_path / "d", {"x": 1})
    monkeypatch.setitem(sys.modules, "PIL", None)        # makes the import fail
    net = nngraph.load(net_text(f"{{images: {tmp_path / 'd'}}}", classes=2))
    with pytest.raises(DataError, match=r"needs the Pillow package.*pip install pillow"):
        load_training_data(net)


# ---------------------------------------------------------------- tools/idx_to_npz.py

def idx_to_npz():
    spec = importlib.util.spec_from_file_location(
        "idx_to_npz", os.path.join(ROOT, "tools", "idx_to_npz.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_idx(path, array, code=0x08):
    """`array` as an IDX file (gzip-compressed when `path` ends in .gz)."""
    dtype = {0x08: ">u1", 0x0C: ">i4"}[code]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + np.asarray(array, dtype).tobytes()
    (gzip.open if str(path).endswith(".gz") else open)(path, "wb").write(data)


def test_idx_to_npz_round_trips(tmp_path, capsys):
    tool = idx_to_npz()
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    test_x = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
    train_y, test_y = np.array([0, 1, 2, 3, 9]), np.array([9, 0, 3])
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train_y)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test_x)          # not compressed
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", test_y)          # Kaggle's spelling
    assert tool.main([str(tmp_path), "-o", str(tmp_path / "mnist.npz")]) == 0
    assert "image (8, 1, 28, 28) float32" in capsys.readouterr().out
    with np.load(tmp_path / "mnist.npz") as f:
        assert sorted(f.files) == ["image", "label"]
        image, label = f["image"], f["label"]
    assert image.dtype == np.float32 and label.dtype == np.int64
    np.testing.assert_array_equal(image[:, 0] * 255, np.concatenate([train_x, test_x]))
    np.testing.assert_array_equal(image, np.concatenate([train_x, test_x])[:, None]
                                  .astype(np.float32) / 255)
    assert label.tolist() == [0, 1, 2, 3, 9, 9, 0, 3]
    np.testing.assert_array_equal(tool.read_idx(str(tmp_path / "t10k-images-idx3-ubyte")),
                                  test_x)
    wide = np.array([[1, -2], [70000, 3]])
    write_idx(tmp_path / "wide", wide, code=0x0C)
    got = tool.read_idx(str(tmp_path / "wide"))
    assert got.tolist() == wide.tolist() and got.dtype == np.dtype("int32")

    # the npz trains as docs/data.md shows: the tail, the test digits, is held out
    net = nngraph.load(net_text(f"{{npz: {tmp_path / 'mnist.npz'}, shuffle: false, "
                                f"test_split: 0.375}}", image="[1, 28, 28]", classes=10))
    assert load_splits(net).test["label"].tolist() == [9, 0, 3]


def test_idx_to_npz_errors(tmp_path, capsys):
    tool = idx_to_npz()
    assert tool.main([str(tmp_path)]) == 1
    assert "no train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)" in capsys.readouterr().err
    (tmp_path / "junk").write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="junk: not an IDX file"):
        tool.read_idx(str(tmp_path / "junk"))
    write_idx(tmp_path / "short", np.zeros((2, 3), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"the header says 2x3 values of 1 byte\(s\), but 5"):
        tool.read_idx(str(tmp_path / "short"))


def test_map_picks_the_input_the_images_feed(tmp_path):
    write_images(tmp_path / "d", {"a": 2, "b": 2})
    text = net_text(f"{{images: {tmp_path / 'd'}, map: {{pixels: x, label: y}}}}", classes=2)
    text = text.replace("image: {shape: [1, 4, 6]}", "other: {shape: [2]}\n  pixels: "
                        "{shape: [1, 4, 6]}").replace("{op: flatten}", "{op: flatten, in: pixels}")
    text = text.replace("  - {op: dense, name: out, units: 2}",
                        "  - {op: dense, name: h, units: 2}\n"
                        "  - {op: add, name: out, in: [h, other]}")
    net = nngraph.load(text)
    # read for 'pixels' ([1, 4, 6]), not for the first feature input 'other' ([2])
    with pytest.raises(DataError, match=r"of 2 classes \(a, b\) has no array for input 'other'"):
        load_training_data(net)
    with pytest.raises(DataError, match=r"images feed input 'other', declared with shape \[2\]"):
        load_training_data(net, {"map": {"label": "y"}})


def test_eval_confusion_names_an_image_folder_s_classes(tmp_path, capsys):
    from nngraph.cli import main
    write_images(tmp_path / "shapes", {"b_square": 8, "a_circle": 8, "c_line": 8})
    path = spec_file(tmp_path, "{images: shapes, validation_split: 0.25}")
    model = str(tmp_path / "m.nnz")
    nngraph.compile(path, backend="reference").save(model)
    capsys.readouterr()
    assert main(["eval", model, "--confusion", "--backend", "reference"]) == 0
    table = capsys.readouterr().out.split("columns: predicted)\n")[1].splitlines()
    assert table[0].split() == ["a_circle", "b_square", "c_line", "recall"]
    assert [row.split()[0] for row in table[1:4]] == ["a_circle", "b_square", "c_line"]
    assert sum(int(v) for row in table[1:4] for v in row.split()[1:4]) == 6
