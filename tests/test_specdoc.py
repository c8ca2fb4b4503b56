"""docs/spec.md, the spec language reference: it is what the generator writes today, it
names every op and initializer, and the JSON schema it shares its tables with describes
every key, with the defaults that training really uses."""
import json
import math
import os

import numpy as np
import pytest

import nngraph
from nngraph import initializers, ops
from nngraph.cli import main
from nngraph.data import load_splits
from nngraph.errors import DataError
from nngraph.ops.base import REQUIRED
from nngraph.schema import json_schema
from nngraph.spec.train_schema import (DATA_DEFAULTS, EARLY_STOPPING_DEFAULTS,
                                       OPTIMIZER_DEFAULTS, OPTIMIZERS, TRAIN_DEFAULTS)
from nngraph.specdoc import REGENERATE, spec_reference

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "spec.md")


@pytest.fixture(scope="module")
def text():
    return spec_reference()


def test_docs_spec_md_is_what_the_generator_writes(text):
    with open(DOC, encoding="utf-8") as f:
        committed = f.read()
    if committed != text:
        old, new = committed.splitlines(), text.splitlines()
        line = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b),
                    min(len(old), len(new)))
        pytest.fail(f"docs/spec.md is out of date (first difference at line {line + 1}: "
                    f"{new[line] if line < len(new) else '<end>'!r}); regenerate it with "
                    f"`{REGENERATE}` and commit it")


def test_every_op_and_initializer_has_its_entry(text):
    for name, op in ops.REGISTRY.items():
        assert f"#### `{name}`" in text, name
        if op.kind == "loss":
            assert f"| [`{name}`](#{name}) |" in text, f"{name} is missing from the loss table"
    parametric = [n for n, op in ops.REGISTRY.items() if ops.is_parametric(op)]
    for name in parametric:
        entry = text.split(f"#### `{name}`", 1)[1].split("####", 1)[0]
        assert "Parameters: `" in entry, f"{name}'s entry does not list its parameters"
    for name in initializers.NAMED:
        assert f"| `{name}` |" in text, name
    for name in initializers.PARAMETRISED:
        assert f"| `{{{name}: " in text, name


def test_the_reference_explains_the_block_syntax(text):
    for word in ("`$input`", "`repeat: N`", "`$name`", "res_1/conv_a", "## Metrics"):
        assert word in text, word


def _keyed_objects(schema):
    """(where, properties) of every object in the schema whose keys a spec writes."""
    defs, train = schema["$defs"], schema["$defs"]["train"]
    yield "top level", schema["properties"]
    yield "inputs", defs["input"]["properties"]
    yield "blocks", defs["block"]["properties"]
    yield "block instances", defs["layer"]["allOf"][-1]["then"]["properties"]
    for name, d in defs.items():
        if name.startswith(("layer_", "loss_")):
            yield name, {k: v for k, v in d["properties"].items() if k != "op"}
    yield "train", train["properties"]
    yield "train.data", train["properties"]["data"]["properties"]
    yield "train.early_stopping", train["properties"]["early_stopping"]["properties"]
    for rule in train["properties"]["optimizer"]["else"]["allOf"]:
        yield "optimizer", {k: v for k, v in rule["then"]["properties"].items() if k != "type"}


def test_the_schema_describes_every_key():
    missing = [f"{where}: {k}" for where, props in _keyed_objects(json_schema())
               for k, s in props.items() if not s.get("description")]
    assert missing == []


def test_the_schema_has_every_default_the_tables_have():
    schema = json_schema()
    defs, train = schema["$defs"], schema["$defs"]["train"]["properties"]
    for name, op in ops.REGISTRY.items():
        props = defs[f"{'loss' if op.kind == 'loss' else 'layer'}_{name}"]["properties"]
        for at in ops.layer_attrs(op):
            if at.default is not REQUIRED and at.default is not None:
                want = list(at.default) if isinstance(at.default, tuple) else at.default
                assert props[at.name].get("default") == json.loads(json.dumps(want)), \
                    f"{name}.{at.name}"
    tables = [(train, TRAIN_DEFAULTS), (train["data"]["properties"], DATA_DEFAULTS),
              (train["early_stopping"]["properties"], EARLY_STOPPING_DEFAULTS)]
    rules = train["optimizer"]["else"]["allOf"]
    tables += [(rule["then"]["properties"], OPTIMIZER_DEFAULTS[n])
               for rule, n in zip(rules, OPTIMIZERS)]
    for props, defaults in tables:
        for k, v in defaults.items():
            if k in props:                   # a default of a key another change removed
                assert props[k]["default"] == v, k


# ------------------------------------------------------------ the defaults are the truth

def _classifier(n: int, **data) -> dict:
    """Two-class inline data, n samples: the smallest spec that trains."""
    rng = np.random.default_rng(0)
    return {"nngraph": 1, "name": "tiny",
            "inputs": {"x": {"shape": [3]}, "y": {"shape": [], "dtype": "int64"}},
            "layers": [{"op": "dense", "units": 2}],
            "losses": [{"op": "softmax_cross_entropy", "in": ["dense_1", "y"]}],
            "train": {"data": {"inline": {"x": rng.normal(size=(n, 3)).round(3).tolist(),
                                          "y": [i % 2 for i in range(n)]}, **data}}}


def test_train_defaults_are_what_fit_does():
    model = nngraph.compile(_classifier(40), backend="reference", seed=0)
    model.fit(verbose=0)
    assert model.epoch == TRAIN_DEFAULTS["epochs"]
    assert model.step == math.ceil(40 / TRAIN_DEFAULTS["batch_size"])
    assert model.optimizer.config["type"] == TRAIN_DEFAULTS["optimizer"]


def test_data_defaults_change_nothing_when_written():
    net = nngraph.load(_classifier(40, limit=30))
    base = load_splits(net)
    for key, value in DATA_DEFAULTS.items():
        try:
            written = load_splits(net, {key: value})
        except DataError:                    # a key of another source (images' resize)
            continue
        for part in ("train", "validation", "test"):
            a, b = getattr(base, part), getattr(written, part)
            assert (a is None) == (b is None), key
            for name in a or {}:
                np.testing.assert_array_equal(a[name], b[name], err_msg=key)


def test_early_stopping_defaults_are_what_training_uses():
    from nngraph.training import _EarlyStopping
    stopper = _EarlyStopping({}, has_validation=True)
    assert stopper.patience == EARLY_STOPPING_DEFAULTS["patience"]
    assert stopper.min_delta == EARLY_STOPPING_DEFAULTS["min_delta"]


def test_cli_docs_writes_the_reference(tmp_path, text, capsys):
    out = tmp_path / "spec.md"
    assert main(["docs", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == text
    assert main(["docs"]) == 0
    assert capsys.readouterr().out.endswith(text)
