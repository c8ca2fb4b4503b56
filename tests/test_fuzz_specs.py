"""No crash on any spec: a seeded, structure-aware mutation fuzzer over every spec in specs/.

Each case takes one example spec (in its YAML and its JSON form), mutates it one to three
times and loads it. nngraph.load must either return a Network or raise one of nngraph's own
errors; a spec error loaded from a file must point at FILE:LINE:COL inside that file. The
mutations are those a person (or a broken generator) makes: keys deleted, duplicated,
misspelt or added; values of the wrong type (list, mapping, string, number, null, bool);
numbers huge, negative, zero, NaN or infinite; nesting hundreds of levels deep; the text cut
off at a random point; references to layers and inputs renamed. Hypothesis adds specs built
from scratch, and `nngraph check` is fuzzed in-process through its main().

The normal suite runs a few thousand cases. A longer run:

    NNGRAPH_FUZZ_CASES=100000 python -m pytest -q -n 2 tests/test_fuzz_specs.py

NNGRAPH_FUZZ_CASES is the number of mutated specs in all (spread over the specs and their two
forms); NNGRAPH_FUZZ_SEED changes the seed (default 0). Failures are grouped by where the
exception was raised, each with one spec that reproduces it; NNGRAPH_FUZZ_SAVE=DIR also
writes those specs to DIR.
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import math
import os
import random
import re
import reprlib
import time
import traceback

import pytest
import yaml

import nngraph
from nngraph.cli import main
from nngraph.errors import NNGraphError, SpecError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml")) +
               glob.glob(os.path.join(ROOT, "specs", "*.json")))
CASES = int(os.environ.get("NNGRAPH_FUZZ_CASES", "3000"))
SEED = int(os.environ.get("NNGRAPH_FUZZ_SEED", "0"))
SAVE = os.environ.get("NNGRAPH_FUZZ_SAVE")
FORMS = ("yaml", "json")
PER_SPEC = max(1, CASES // (len(SPECS) * len(FORMS)))


# ------------------------------------------------------------------------ serialising

class Deep:
    """A value nested `depth` times in lists or mappings, written out as text directly (no
    Python recursion on our side)."""

    def __init__(self, depth: int, kind: str, leaf):
        self.depth, self.kind, self.leaf = depth, kind, leaf

    def flow(self, leaf_text: str) -> str:
        if self.kind == "list":
            return "[" * self.depth + leaf_text + "]" * self.depth
        return '{"k": ' * self.depth + leaf_text + "}" * self.depth


class DupDict(dict):
    """A mapping written with one of its keys twice (JSON and YAML texts can say that)."""

    def __init__(self, items, key, value):
        super().__init__(items)
        self.dup = (key, value)

    def members(self):
        return list(self.items()) + [self.dup]


def _members(v: dict):
    return v.members() if isinstance(v, DupDict) else list(v.items())


_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$/.-]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _yaml_scalar(v) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    return json.dumps(s)


def _json_scalar(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return json.dumps(v if isinstance(v, (str, int, float, bool, type(None))) else str(v))


def to_json(v, indent: int = 0) -> str:
    """One member per line for the top two levels (so that a doubled line doubles a key),
    everything deeper on one line."""
    if isinstance(v, Deep):
        return v.flow(to_json(v.leaf, 9))
    if isinstance(v, dict) and v:
        if indent > 2:
            return "{" + ", ".join(f"{json.dumps(str(k))}: {to_json(x, indent)}"
                                   for k, x in _members(v)) + "}"
        pad = " " * (indent + 2)
        return "{\n" + ",\n".join(f"{pad}{json.dumps(str(k))}: {to_json(x, indent + 2)}"
                                   for k, x in _members(v)) + "\n" + " " * indent + "}"
    if isinstance(v, list) and v and indent <= 2:
        pad = " " * (indent + 2)
        return "[\n" + ",\n".join(pad + to_json(x, 9) for x in v) + "\n" + " " * indent + "]"
    if isinstance(v, list):
        return "[" + ", ".join(to_json(x, 9) for x in v) + "]"
    if isinstance(v, dict):
        return "{}"
    return _json_scalar(v)


def _yaml_flow(v) -> str:
    if isinstance(v, Deep):
        return v.flow(_yaml_flow(v.leaf))
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_yaml_scalar(str(k))}: {_yaml_flow(x)}"
                               for k, x in _members(v)) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_flow(x) for x in v) + "]"
    return _yaml_scalar(v)


def to_yaml(v, indent: int = 0) -> str:
    """Block style for the top two levels (as the example specs are written), flow inside."""
    pad = " " * indent
    if isinstance(v, dict) and v and indent <= 2:
        lines = []
        for k, x in _members(v):
            if isinstance(x, (dict, list)) and x and not isinstance(x, Deep):
                lines.append(f"{pad}{_yaml_scalar(str(k))}:\n{to_yaml(x, indent + 2)}")
            else:
                lines.append(f"{pad}{_yaml_scalar(str(k))}: {_yaml_flow(x)}\n")
        return "".join(lines)
    if isinstance(v, list) and v and indent <= 2:
        return "".join(f"{pad}- {_yaml_flow(x)}\n" for x in v)
    return pad + _yaml_flow(v) + "\n"


def render(data, form: str) -> str:
    return to_json(data) + "\n" if form == "json" else to_yaml(data)


# ------------------------------------------------------------------------ mutating

def _nodes(v, path=()):
    """(path, value) of every node, the root included."""
    out = [(path, v)]
    if isinstance(v, dict):
        for k, x in v.items():
            out += _nodes(x, path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _nodes(x, path + (i,))
    return out


def _get(v, path):
    for p in path:
        v = v[p]
    return v


def _set(root, path, value):
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


def _strings(v) -> list:
    return sorted({x for _, x in _nodes(v) if isinstance(x, str)} |
                  {k for p, _ in _nodes(v) for k in p if isinstance(k, str)})


NUMBERS = [0, -1, 1, 2, -7, 10**6, 10**9, 2**31, 2**63, 10**30, 10**99, -10**18, 0.0, 0.5, -0.5,
           1e-300, 1e300, 1.7976931348623157e308, math.nan, math.inf, -math.inf]
SCALARS = [None, True, False, "", "x", "dense", "$input", "$filters", "relu", "same",
           "float64", "int64", "he_normal", "../etc", "a.b", "a/b", "\u00e9\u00e8", "12",
           "1e3", "null", "~", "x\ud800", "\U0001f600", "a b", "a-b", "a:relu"]


def _random_value(rng: random.Random, doc):
    r = rng.random()
    if r < 0.3:
        return rng.choice(NUMBERS)
    if r < 0.55:
        return rng.choice(SCALARS)
    if r < 0.7:
        return rng.choice([[], {}, [1, 2], [[1]], {"a": 1}, {"uniform": {"low": 1}},
                           [None], ["x", 1], {"type": ["adam"]}])
    nodes = _nodes(doc)
    return json.loads(json.dumps(rng.choice(nodes)[1], default=str))     # a copy of a subtree


def mutate(doc, rng: random.Random):
    """One structural mutation of `doc` (changed in place where possible; returned)."""
    nodes = _nodes(doc)
    path, node = rng.choice(nodes)
    kind = rng.choice(("delete", "delete", "type", "type", "number", "number", "deep",
                       "rename", "rename", "add_key", "swap", "duplicate", "dup_key"))
    if kind == "delete" and path:
        parent = _get(doc, path[:-1])
        del parent[path[-1]]
        return doc
    if kind == "type":
        return _set(doc, path, _random_value(rng, doc))
    if kind == "number":
        numeric = [(p, x) for p, x in nodes if isinstance(x, (int, float))]
        p = rng.choice(numeric)[0] if numeric and rng.random() < 0.8 else path
        return _set(doc, p, rng.choice(NUMBERS))
    if kind == "deep":
        depth = rng.choice((3, 40, 100, 400, 1000, 3000))
        return _set(doc, path, Deep(depth, rng.choice(("list", "dict")), node))
    if kind == "rename":
        strings = _strings(doc)
        old = rng.choice(strings) if strings else "x"
        new = rng.choice([old + "x", old[:-1], old.upper(), rng.choice(strings or ["y"]),
                          "$input", "", "a.b", old + "\udc00", old.replace("_", "-")])
        return _rename(doc, old, new, rng)
    if kind == "add_key" and isinstance(node, dict):
        node[rng.choice(["extra", "in", "name", "op", "repeat", "params", "output",
                         "activation", "units", "shape", "dtype", "type"])] = \
            _random_value(rng, doc)
        return doc
    if kind == "swap":
        other, value = rng.choice(nodes)
        if not other or not path or other[:len(path)] == path or path[:len(other)] == other:
            return doc
        a = json.loads(json.dumps(node, default=str))
        b = json.loads(json.dumps(value, default=str))
        _set(doc, path, b)
        return _set(doc, other, a)
    if kind == "dup_key" and isinstance(node, dict) and node:
        key = rng.choice(list(node))
        value = node[key] if rng.random() < 0.5 else _random_value(rng, doc)
        return _set(doc, path, DupDict(node, key, value))
    if kind == "duplicate" and isinstance(node, list) and node:
        node.insert(rng.randrange(len(node) + 1), json.loads(json.dumps(rng.choice(node),
                                                                       default=str)))
        return doc
    return doc


def _rename(v, old, new, rng):
    """Replace the string `old` by `new`, as a value or as a key, at one or every place."""
    every = rng.random() < 0.5
    done = [False]

    def walk(x):
        if isinstance(x, dict):
            out = {}
            for k, y in x.items():
                if k == old and (every or not done[0]):
                    done[0] = True
                    k = new
                out[k] = walk(y)
            return out
        if isinstance(x, list):
            return [walk(y) for y in x]
        if x == old and isinstance(x, str) and (every or not done[0]):
            done[0] = True
            return new
        return x
    return walk(v)


def mutate_text(text: str, rng: random.Random) -> str:
    """A mutation of the written text: cut off, a line doubled, dropped or shifted, junk."""
    lines = text.splitlines(keepends=True)
    kind = rng.choice(("truncate", "truncate", "dup_line", "drop_line", "indent", "junk"))
    if kind == "truncate" or not lines:
        return text[:rng.randrange(len(text) + 1)]
    i = rng.randrange(len(lines))
    if kind == "dup_line":
        lines.insert(i, lines[i])
    elif kind == "drop_line":
        del lines[i]
    elif kind == "indent":
        lines[i] = rng.choice((" ", "  ", "\t", "")) + lines[i].lstrip(" " * rng.randrange(3))
    else:
        pos = rng.randrange(len(text) + 1)
        junk = rng.choice(("{", "}", "[", "]", ":", "- ", "&a ", "*a", "!!python/object ",
                           "\x00", "'", '"', "#", ",", "\n", "<<: *a\n", "? ", "|\n"))
        return text[:pos] + junk + text[pos:]
    return "".join(lines)


def spec_data(path: str):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)


def make_case(data, form: str, rng: random.Random) -> str:
    """The text of one mutated spec."""
    doc = json.loads(json.dumps(data))
    for _ in range(rng.choice((1, 1, 2, 3))):
        doc = mutate(doc, rng)
    text = render(doc, form)
    if rng.random() < 0.25:
        text = mutate_text(text, rng)
    return text


# ------------------------------------------------------------------------ checking

class Failures:
    """Unexpected exceptions, grouped by where they were raised, one reproducer each."""

    def __init__(self):
        self.groups: dict = {}

    def add(self, exc: BaseException, text: str, what: str):
        tb = traceback.extract_tb(exc.__traceback__)
        frame = tb[-1] if tb else None
        where = f"{frame.filename}:{frame.lineno}" if frame else "?"
        key = (type(exc).__name__, where)
        if key not in self.groups:
            self.groups[key] = (f"{type(exc).__name__}: {str(exc)[:300]}", text, what,
                                "".join(traceback.format_exception(exc))[-3000:])
        if SAVE:
            os.makedirs(SAVE, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9]+", "_", f"{key[0]}_{os.path.basename(where)}")
            with open(os.path.join(SAVE, name + ".txt"), "w", encoding="utf-8") as f:
                f.write(f"# {what}\n{text}")

    def check(self, cases: int):
        if not self.groups:
            return
        parts = [f"{len(self.groups)} kinds of crash in {cases} cases:"]
        for (name, where), (msg, text, what, tb) in self.groups.items():
            parts.append(f"--- {name} at {where} ({what})\n{msg}\n{tb}\nspec:\n{text[:1500]}")
        pytest.fail("\n".join(parts), pytrace=False)


def check_diagnostics(err: SpecError, path: str, text: str):
    """Every diagnostic names the file and a line and column inside it."""
    lines = text.count("\n") + 2
    assert err.diagnostics, "a SpecError with no diagnostics"
    for d in err.diagnostics:
        assert d.file == path, (d, path)
        assert 1 <= d.line <= lines and d.col >= 1, (str(d), lines)
        assert str(d).startswith(f"{path}:{d.line}:{d.col}: {d.severity}[{d.code}]: "), str(d)
        assert d.message


def load_case(path: str, text: str, failures: Failures, what: str):
    """Load `text` from `path`; returns the Network, or None when it was refused."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    try:
        net = nngraph.load(path)
        net.summary()
        return net
    except SpecError as e:
        try:
            check_diagnostics(e, path, text)
        except AssertionError as bad:
            failures.add(bad, text, what)
    except NNGraphError:
        pass
    except (Exception, RecursionError) as e:       # noqa: BLE001  -- that is what we look for
        failures.add(e, text, what)
    return None


# ------------------------------------------------------------------------ the tests

@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("spec", SPECS, ids=os.path.basename)
def test_mutated_specs_raise_only_spec_errors(spec, form, tmp_path):
    data = spec_data(spec)
    rng = random.Random(f"{SEED}:{os.path.basename(spec)}:{form}")
    path = str(tmp_path / f"case.{form}")
    failures = Failures()
    loaded = 0
    for i in range(PER_SPEC):
        text = make_case(data, form, rng)
        if load_case(path, text, failures, f"{os.path.basename(spec)} {form} case {i}"):
            loaded += 1
    failures.check(PER_SPEC)
    assert loaded < PER_SPEC or PER_SPEC < 10        # the mutations do reach the checks


@pytest.mark.parametrize("spec", SPECS, ids=os.path.basename)
def test_mutated_dicts_raise_only_spec_errors(spec):
    """nngraph.load(dict) with the same mutations and Python values JSON cannot hold."""
    data = spec_data(spec)
    rng = random.Random(f"{SEED}:{os.path.basename(spec)}:dict")
    failures = Failures()
    keys = [(1, 2), 3j, b"bytes", 7, None, (), 1.5]            # hashable, not strings
    odd = keys + [{1, 2}, object(), float("nan"), {"a"}, range(3), 10**400, -10**200]
    for i in range(max(1, PER_SPEC // 4)):
        doc = json.loads(json.dumps(data))
        for _ in range(rng.choice((1, 2))):
            doc = mutate(doc, rng)
        if rng.random() < 0.3:           # a non-string key or a non-JSON value somewhere
            nodes = [(p, x) for p, x in _nodes(doc) if isinstance(x, dict)]
            if nodes:
                _, node = rng.choice(nodes)
                if node and rng.random() < 0.5:
                    k = rng.choice(list(node))
                    node[rng.choice(keys)] = node.pop(k)
                else:
                    node[rng.choice(("shape", "units", "op", "in", "x"))] = rng.choice(odd)
        doc = _undeep(doc)
        try:
            nngraph.load(doc)
        except NNGraphError:
            pass
        except (Exception, RecursionError) as e:    # noqa: BLE001
            failures.add(e, reprlib.repr(doc), f"{os.path.basename(spec)} dict case {i}")
    failures.check(PER_SPEC // 4)


def _undeep(v):
    if isinstance(v, Deep):
        inner = _undeep(v.leaf)
        for _ in range(v.depth):
            inner = [inner] if v.kind == "list" else {"k": inner}
        return inner
    if isinstance(v, dict):
        return {k: _undeep(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_undeep(x) for x in v]
    return v


def test_check_command_exits_0_or_1_and_reports_every_file(tmp_path):
    """`nngraph check A B C ...` in-process: exit 0 or 1, never an internal error, and a
    line for each file however the ones before it failed."""
    rng = random.Random(f"{SEED}:check")
    datas = [(spec, spec_data(spec)) for spec in SPECS]
    failures = Failures()
    runs = max(20, CASES // 30)
    for i in range(runs):
        paths, texts = [], []
        for j in range(3):
            spec, data = rng.choice(datas)
            form = rng.choice(FORMS)
            text = make_case(data, form, rng)
            path = str(tmp_path / f"c{j}.{form}")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            paths.append(path)
            texts.append(text)
        # encoded as a terminal's would be: stdout strict, stderr with backslashes
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(["check", *paths])
                out.flush()
                err.flush()
            except (Exception, SystemExit) as e:    # noqa: BLE001
                failures.add(e, "\n---\n".join(texts), f"check run {i}")
                continue
        shown = out.buffer.getvalue().decode() + err.buffer.getvalue().decode()
        try:
            assert rc in (0, 1), shown
            for p in paths:
                assert f"{p}: ok" in shown or re.search(re.escape(p) + r": \d+ errors?", shown), \
                    (p, shown)
        except AssertionError as e:
            failures.add(e, "\n---\n".join(texts), f"check run {i}")
    failures.check(runs)


def test_check_goes_on_after_an_internal_error(tmp_path, monkeypatch, capsys):
    """A bug that escapes as an internal error in one file still lets the others be checked."""
    import nngraph.cli as cli
    good = os.path.join(ROOT, "specs", "xor_mlp.yaml")
    real = cli._load

    def flaky(path):
        if path == "boom.yaml":
            raise ZeroDivisionError("simulated bug")
        return real(path)
    monkeypatch.setattr(cli, "_load", flaky)
    rc = main(["check", "boom.yaml", good])
    out = capsys.readouterr()
    assert rc == 2
    assert "boom.yaml: internal error: ZeroDivisionError: simulated bug" in out.err
    assert f"{good}: ok" in out.out


# ------------------------------------------------------------------------ hypothesis

def _hypothesis_specs():
    from hypothesis import strategies as st
    names = st.sampled_from(["image", "x", "label", "h", "logits", "c1", "fc", "$input",
                             "res", "b"])
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40),
                        st.floats(allow_nan=True, allow_infinity=True), names,
                        st.sampled_from(["same", "valid", "relu", "float64", "int64", "sgd",
                                         "adam", "he_normal", "zeros"]))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=3)), max_leaves=8)
    ops = st.sampled_from(sorted(nngraph.ops.REGISTRY) + ["blk", "nope"])
    attr_names = st.sampled_from(["units", "filters", "kernel", "stride", "padding", "size",
                                  "rate", "axis", "shape", "vocab", "dim", "activation",
                                  "return_sequences", "weight_init", "bias_init", "use_bias",
                                  "lr_mult", "regularizer", "trainable", "repeat", "sigma"])
    layer = st.fixed_dictionaries({"op": ops}, optional={
        "name": names, "in": st.one_of(names, st.lists(names, max_size=3)),
    }).flatmap(lambda base: st.dictionaries(attr_names, values, max_size=4).map(
        lambda extra: {**extra, **base}))
    shapes = st.lists(st.integers(-1, 40), max_size=4)
    inputs = st.dictionaries(names, st.one_of(
        st.fixed_dictionaries({"shape": shapes}, optional={
            "dtype": st.sampled_from(["float32", "int64", "float16", 3])}), values),
        max_size=3)
    block = st.fixed_dictionaries({"layers": st.lists(layer, max_size=3)},
                                  optional={"params": st.dictionaries(attr_names, values,
                                                                      max_size=2),
                                            "output": names})
    return st.fixed_dictionaries(
        {"nngraph": st.sampled_from([1, 1, 1, 2, "1"]), "name": st.sampled_from(["n", "", 3]),
         "inputs": st.one_of(inputs, values), "layers": st.lists(layer, max_size=6)},
        optional={"outputs": st.one_of(names, st.lists(names, max_size=2), values),
                  "losses": st.lists(st.fixed_dictionaries(
                      {"op": st.sampled_from(["softmax_cross_entropy", "squared_error",
                                              "hinge", "kl_sparsity", "dense"]),
                       "in": st.one_of(names, st.lists(names, max_size=3))}), max_size=2),
                  "blocks": st.dictionaries(st.just("blk"), block, max_size=1),
                  "train": st.one_of(values, st.fixed_dictionaries({}, optional={
                      "optimizer": values, "batch_size": values, "epochs": values,
                      "data": values}))})


def test_hypothesis_specs_raise_only_spec_errors(tmp_path):
    from hypothesis import HealthCheck, given, seed, settings

    path_yaml, path_json = str(tmp_path / "h.yaml"), str(tmp_path / "h.json")
    failures = Failures()
    count = [0]

    @seed(SEED)
    @settings(max_examples=max(50, CASES // 15), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_hypothesis_specs())
    def run(doc):
        count[0] += 1
        try:
            nngraph.load(doc)
        except NNGraphError:
            pass
        except (Exception, RecursionError) as e:    # noqa: BLE001
            failures.add(e, reprlib.repr(doc), "hypothesis dict")
        for path, form in ((path_yaml, "yaml"), (path_json, "json")):
            load_case(path, render(doc, form), failures, f"hypothesis {form}")
    run()
    failures.check(count[0])


# ------------------------------------------------------------------------ compile

def test_some_loaded_mutants_compile_or_refuse_cleanly():
    """A few mutants that load are compiled on the reference backend (small ones only)."""
    rng = random.Random(f"{SEED}:compile")
    failures = Failures()
    small = [s for s in SPECS if os.path.basename(s) in (
        "xor_mlp.yaml", "perceptron_and.yaml", "iris_mlp.json", "backprop_222.yaml",
        "autoencoder.yaml")]
    compiled = 0
    deadline = time.perf_counter() + 8
    while compiled < max(10, CASES // 300) and time.perf_counter() < deadline:
        spec = rng.choice(small)
        doc = json.loads(json.dumps(spec_data(spec)))
        doc = mutate(doc, rng)
        try:
            net = nngraph.load(_undeep(doc))
        except NNGraphError:
            continue
        except (Exception, RecursionError):        # noqa: BLE001 -- the tests above report it
            continue
        if net.num_params > 100_000:
            continue
        compiled += 1
        try:
            nngraph.compile(net, backend="reference")
        except NNGraphError:
            pass
        except (Exception, RecursionError) as e:    # noqa: BLE001
            failures.add(e, reprlib.repr(doc), f"compile {os.path.basename(spec)}")
    failures.check(compiled)


BIG = """\
nngraph: 1
name: big
inputs:
  x: {shape: [2000]}
  y: {shape: [], dtype: int64}
layers:
  - {op: dense, name: hidden, units: 8}
  - {op: dense, name: wide, in: x, units: 1000000}
outputs: [hidden, wide]
losses:
  - {op: softmax_cross_entropy, in: [wide, y]}
"""


def test_a_network_too_large_for_memory_is_refused_at_compile_before_allocating(
        tmp_path, monkeypatch):
    """`dense units: 1000000` on 2,000 inputs passes check (each tensor is under the hard
    limits) but needs 16 GB to train: compile refuses it from the estimate, at the layer."""
    import tracemalloc
    path = tmp_path / "big.yaml"
    path.write_text(BIG)
    net = nngraph.load(str(path))                      # valid: check says ok
    assert net.num_params == 2000 * 1000000 + 1000000 + 2000 * 8 + 8
    monkeypatch.setenv("NNGRAPH_MEMORY_LIMIT", "4GiB")  # the same on every machine
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(SpecError) as info:
            nngraph.compile(str(path), backend="reference")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5 and peak < 20 * 2**20
    (d,) = info.value.diagnostics
    assert (d.file, d.line, d.col, d.code) == (str(path), 8, 5, "E031")
    assert "layer 'wide' (dense)" in d.message and "2,001,000,000 parameters" in d.message
    # 2,001,016,008 parameters and their gradients in float32, and the activations
    assert "15.1 GiB (16,265,154,112 B) in float32" in d.message
    assert "NNGRAPH_MEMORY_LIMIT=4GiB" in d.message

    monkeypatch.setenv("NNGRAPH_MEMORY_LIMIT", "off")          # the limit can be lifted
    from nngraph.memory import memory_limit
    assert memory_limit()[0] is None
    monkeypatch.delenv("NNGRAPH_MEMORY_LIMIT")
    limit, why = memory_limit()                                # default: half the memory
    assert limit is None or (limit > 0 and why.startswith("half of this machine's"))


def test_memory_limit_setting_is_checked(monkeypatch):
    from nngraph.memory import memory_limit
    for text, want in (("8GiB", 8 * 2**30), ("500MB", 500 * 10**6), ("4e9", 4 * 10**9),
                       ("1024", 1024), ("1.5 kib", 1536)):
        monkeypatch.setenv("NNGRAPH_MEMORY_LIMIT", text)
        assert memory_limit()[0] == want, text
    monkeypatch.setenv("NNGRAPH_MEMORY_LIMIT", "lots")
    with pytest.raises(NNGraphError, match="NNGRAPH_MEMORY_LIMIT='lots'"):
        memory_limit()


def test_initializers_allocate_in_the_model_dtype():
    """A float32 parameter is drawn a chunk at a time, never whole in float64 first."""
    import tracemalloc

    import numpy as np

    from nngraph import initializers
    shape = (2000, 4000)                                      # 32 MB in float32
    for init in ("he_normal", "glorot_uniform", {"uniform": {"low": -1.0, "high": 1.0}}):
        tracemalloc.start()
        try:
            w = initializers.initialize(init, shape, np.random.default_rng(0), 2000, 4000)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert w.dtype == np.float32 and w.shape == shape and w.flags.c_contiguous
        assert peak < w.nbytes + 2 * initializers.CHUNK * 8 + 2**20, (init, peak)
    # the same values as one float64 draw of the whole array, cast
    want = np.random.default_rng(3).normal(0, np.sqrt(2 / 50), (50, 30)).astype(np.float32)
    got = initializers.initialize("he_normal", (50, 30), np.random.default_rng(3), 50, 30)
    assert np.array_equal(got, want)


# ------------------------------------------------------------------------ found by fuzzing

FOUND = {   # specs the fuzzer found crashing, each now refused or run cleanly
    "no inputs section": "layers:\n  - {op: flatten}\n  - {op: dense, units: 2}\n",
    "inputs not a mapping": "inputs: [x]\nlayers:\n  - {op: conv2d, filters: 2, kernel: 3}\n",
    "every input invalid": "inputs: {x: {shape: [2]}}\nlayers:\n  - {op: add, in: [3, [4]]}\n",
    "block instantiating itself": "inputs: {x: {shape: [2]}}\nblocks:\n  b: {layers: "
                                  "[{op: b}]}\nlayers:\n  - {op: b}\n  - {op: maxpool2d}\n",
    "unhashable optimizer type": "inputs: {x: {shape: [2]}}\nlayers:\n  - {op: dense, "
                                 "units: 2}\ntrain: {optimizer: {type: [adam]}}\n",
    "deep YAML": "inputs: {x: {shape: " + "[" * 600 + "]" * 600 + "}}\nlayers: []\n",
    "deep aliases": "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n"
                                               for i in range(1, 60)) + "layers: []\n",
    "recursive alias": "a: &a [*a]\nlayers: []\n",
    "NUL character": "inputs: {x: {shape: [2]}}\n\x00layers: []\n",
    "5000-digit integer": "inputs: {x: {shape: [2]}}\nlayers:\n  - {op: dense, units: "
                          + "9" * 5000 + "}\n",
    "description not a string": "description: [a]\ninputs: {x: {shape: [2]}}\nlayers:\n"
                                "  - {op: dense, units: 2}\n",
    "pool window of 1e30 with same padding": "inputs: {x: {shape: [1, 8, 8]}}\nlayers:\n"
        "  - {op: maxpool2d, size: 1000000000000000000000000000000, stride: 1, "
        "padding: same}\n",
    "padding of a million": "inputs: {x: {shape: [1, 8, 8]}}\nlayers:\n  - {op: conv2d, "
                            "filters: 1, kernel: 1, padding: 1000000, stride: 1000000}\n",
    "an input as an output": "inputs: {x: {shape: [2]}}\nlayers:\n  - {op: dense, units: 2}\n"
                             "outputs: [dense_1, x]\n",
    "two names, one identifier": "inputs: {x: {shape: [2]}}\nlayers:\n  - {op: dense, "
                                 "name: a-b, units: 2}\n  - {op: dense, name: a_b, units: 2}\n",
    "a layer named as another's activation": "inputs: {x: {shape: [2]}}\nlayers:\n  - {op: "
        "dense, name: fc, units: 2, activation: relu}\n  - {op: dense, name: 'fc:relu', "
        "units: 2}\n",
    "a block layer named as a top-level one": "inputs: {x: {shape: [2]}}\nblocks:\n  b: "
        "{layers: [{op: dense, name: d, units: 2}]}\nlayers:\n  - {op: b, name: r}\n"
        "  - {op: dense, name: r_d, units: 2}\n",
    "half a surrogate pair": "inputs: {x: {shape: [2]}}\nlayers:\n  - {op: dense, name: "
                             "\"d\\ud800\", units: 2}\n",
    "empty input name": "inputs: {'': {shape: [2]}}\nlayers:\n  - {op: dense, units: 2}\n",
    "infinite initializer bounds": "inputs: {x: {shape: [2]}}\nlayers:\n  - {op: dense, "
        "units: 2, weight_init: {uniform: {low: -1.0e+308, high: 1.0e+308}}}\n",
}


@pytest.mark.parametrize("name", FOUND)
def test_specs_found_by_fuzzing_give_located_errors(name, tmp_path):
    text = "nngraph: 1\nname: t\n" + FOUND[name]
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        nngraph.load(str(path))
    check_diagnostics(info.value, str(path), text)
    with pytest.raises(SpecError):
        nngraph.load(yaml_free_dict(text))


def yaml_free_dict(text):
    """The same spec as Python data where YAML can hold it (else the text itself)."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError):
        return text
    return data if isinstance(data, dict) else text


def test_a_layer_read_only_as_a_loss_target_gets_no_backward():
    """squared_error in: [image, decoded]: the loss reads `decoded` as its target, where no
    gradient flows; autodiff once built a backward for it anyway (KeyError in train_step)."""
    import numpy as np
    spec = {"nngraph": 1, "name": "t", "inputs": {"image": {"shape": [4]}},
            "layers": [{"op": "dense", "name": "decoded", "units": 4,
                        "activation": "sigmoid"}],
            "losses": [{"op": "squared_error", "in": ["image", "decoded"]}]}
    model = nngraph.compile(spec, backend="reference")
    loss = model.train_step({"image": np.ones((2, 4), np.float32)})
    assert np.isfinite(loss)


def test_names_beyond_ascii_make_valid_generated_code():
    """'x²' passed str.isalnum() into a generated function name: a SyntaxError at compile."""
    from nngraph.backends.cpu.calls import codegen
    from nngraph.program import build_program
    net = nngraph.load({"nngraph": 1, "name": "t", "inputs": {"\u00e9": {"shape": [2]}},
                        "layers": [{"op": "dense", "name": "x\u00b2", "units": 2,
                                    "activation": "relu"},
                                   {"op": "dense", "name": "2nd", "units": 2}]})
    source = codegen(build_program(net), "float32").source()
    compile(source, "generated", "exec")


def test_a_bad_reference_in_a_block_repeated_1000_times_is_quick():
    """The 'did you mean' over 20,000 layer names was computed for every copy: 22 s."""
    layers = "".join(f"      - {{op: dense, name: l{i}, units: 2}}\n" for i in range(19))
    text = ("nngraph: 1\nname: t\ninputs: {x: {shape: [2]}}\nblocks:\n  b:\n    layers:\n"
            + layers + "      - {op: add, in: [l1, nope]}\nlayers:\n  - {op: b, repeat: 1000}\n")
    t0 = time.perf_counter()
    with pytest.raises(SpecError) as info:
        nngraph.load(text)
    assert time.perf_counter() - t0 < 10
    assert [d.code for d in info.value.errors] == ["E021"]
