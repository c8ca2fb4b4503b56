"""Spec -> Network: check every section, resolve names, build the DAG, infer shapes.

Problems are collected in a Reporter and raised together as one SpecError, so a user sees
everything wrong with a file at once. Later checks skip what earlier ones already rejected
(an unknown op has no shape to infer), so one mistake gives one error, not a cascade.
"""
from __future__ import annotations

import networkx as nx

from .. import metrics, ops
from ..errors import Reporter, did_you_mean
from ..graph import InputDef, Network, label_inputs_of
from ..ops.base import AttrError, Attrs
from ..passes.infer_shapes import infer_shapes
from .borrow import add_companions, resolve_borrows, resolve_shares
from .expand import check_blocks, expand
from .source import Source
from . import checks
from .phases_schema import check_phase_names
from .search_schema import check_overrides, check_search
from .train_schema import check_train

TOP_KEYS = ("nngraph", "name", "description", "inputs", "layers", "outputs", "losses",
            "train", "blocks", "search", "overrides")
REQUIRED_TOP = ("nngraph", "name", "inputs", "layers")
DTYPES = ("float32", "float64", "int64", "int32")
INPUT_KEYS = ("shape", "dtype", "description", "sample")
SAMPLES = ("normal", "uniform")    # sampled inputs (nngraph/sampling.py)
LOSS_KEYS = ("op", "name", "in")
MAX_DIM = 1 << 24
RESERVED = "/."         # block scopes (res_1/conv) and parameters (c1.W)


def _reserved() -> str:
    return ", ".join(f"'{c}'" for c in RESERVED)


def build(src: Source, rep: Reporter) -> Network:
    doc = src.data
    if not isinstance(doc, dict):
        rep.error(src.at(()), "E012", "a spec is a mapping with nngraph, name, inputs and layers")
        rep.raise_if_failed()
    _check_top(src, rep, doc)
    inputs = _check_inputs(src, rep, doc.get("inputs"))
    blocks = check_blocks(src, rep, doc.get("blocks"))
    layers_raw = doc.get("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        if "layers" in doc:
            rep.error(src.at(("layers",)), "E012", "'layers' must be a non-empty list")
        layers_raw = []
    first = next(iter(inputs), None)
    ex = expand(src, rep, layers_raw, blocks, first)
    check_overrides(src, rep, doc.get("overrides"), ex.layers)
    g = nx.DiGraph()
    for name, inp in inputs.items():
        g.add_node(name, kind="input", op=None, attrs=Attrs(), activation=None, inputs=[],
                   shape=inp.shape, dtype=inp.dtype, params={}, state={}, cluster=(),
                   pos=src.at(("inputs", name), key=True))
    decls = [d for d in (_check_layer(src, rep, d) for d in ex.layers) if d is not None]
    for d in decls:
        if d["name"] in g:
            first_at = g.nodes[d["name"]]["pos"]
            rep.error(d["pos"], "E022", f"duplicate name '{d['name']}' (first defined at line "
                                        f"{first_at[0]})")
            continue
        g.add_node(d["name"], **d)
    losses = _check_losses(src, rep, doc.get("losses"), g)
    declared = set(inputs) | {d.name for d in ex.layers} | set(ex.aliases) | ex.rejected
    _connect(src, rep, g, ex.aliases, declared)
    add_companions(src, rep, g, losses)
    outputs = _check_outputs(src, rep, doc.get("outputs"), g, ex.aliases, decls)
    cyclic = checks.check_acyclic(rep, g)
    infer_shapes(g.subgraph([n for n in g if n not in cyclic]), rep, src)
    resolve_shares(src, rep, g, ex.shares)
    resolve_borrows(src, rep, g)
    checks.check_params(src, rep, g)
    checks.check_code_names(rep, g)
    train = check_train(src, rep, doc.get("train"))
    checks.check_sampled_inputs(src, rep, g, inputs)
    checks.check_label_contract(src, rep, g, inputs, losses, train)
    checks.check_metrics(src, rep, g, inputs, losses, train)
    checks.check_init_from(src, rep, g, train)
    check_phase_names(src, rep, g, train, losses, ex.clusters)
    if "search" in doc:
        _check_search(src, rep, doc, g, blocks, inputs, losses, train)
    if not rep.failed:
        checks.warn_unused(rep, g, outputs, losses)
        checks.warn_squashed_logits(rep, g, losses)
    rep.raise_if_failed()
    net = Network(doc.get("name") if isinstance(doc.get("name"), str) else "network",
                  src.file, g, inputs, outputs, losses, train, ex.clusters,
                  [d for d in rep.diagnostics if d.severity == "warning"], doc,
                  doc.get("description") or "")
    return net


# ------------------------------------------------------------------------------ sections


def _check_top(src, rep, doc):
    for k in doc:
        if k not in TOP_KEYS:
            rep.error(src.at((k,), key=True), "E011",
                      f"unknown top-level key '{k}'{did_you_mean(k, TOP_KEYS)}")
    for k in REQUIRED_TOP:
        if k not in doc:
            rep.error(src.at(()), "E010", f"the spec has no '{k}' (required)")
    if "nngraph" in doc and doc["nngraph"] != 1:
        rep.error(src.at(("nngraph",)), "E013",
                  f"unsupported format version {doc['nngraph']!r}: this nngraph reads version 1")
    if "name" in doc and (not isinstance(doc["name"], str) or not doc["name"]):
        rep.error(src.at(("name",)), "E012", "'name' must be a non-empty string")
    if doc.get("description") is not None and not isinstance(doc["description"], str):
        rep.error(src.at(("description",)), "E012", "'description' must be a string")


def _check_inputs(src, rep, inputs) -> dict:
    out = {}
    if inputs is None:
        return out
    if not isinstance(inputs, dict) or not inputs:
        rep.error(src.at(("inputs",)), "E012",
                  "'inputs' maps names to {shape: [...]}, e.g. image: {shape: [1, 28, 28]}")
        return out
    for name, d in inputs.items():
        path = ("inputs", name)
        if not name or any(c in name for c in RESERVED):
            rep.error(src.at(path, key=True), "E012", f"input name {name!r} must be a non-empty "
                                                      f"string without {_reserved()}")
        if not isinstance(d, dict):
            rep.error(src.at(path), "E012", f"input '{name}' must be a mapping with 'shape'")
            continue
        for k in d:
            if k not in INPUT_KEYS:
                rep.error(src.at(path + (k,), key=True), "E011",
                          f"input '{name}': unknown key '{k}'{did_you_mean(k, INPUT_KEYS)}")
        if d.get("description") is not None and not isinstance(d["description"], str):
            rep.error(src.at(path + ("description",)), "E012",
                      f"input '{name}': 'description' must be a string")
        shape = d.get("shape")
        if shape is None:
            rep.error(src.at(path), "E010", f"input '{name}' has no 'shape' (use [] for a scalar)")
            continue
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                  for s in shape):
            rep.error(src.at(path + ("shape",)), "E012",
                      f"input '{name}': shape must be a list of integers, got {shape!r}")
            continue
        bad = [s for s in shape if s < 1 or s > MAX_DIM]
        if bad:
            rep.error(src.at(path + ("shape",)), "E013",
                      f"input '{name}': every dimension must be from 1 to {MAX_DIM:,}, got {bad[0]}")
            continue
        dtype = d.get("dtype", "float32")
        if dtype not in DTYPES:
            rep.error(src.at(path + ("dtype",)), "E013",
                      f"input '{name}': dtype must be one of {', '.join(DTYPES)}, got {dtype!r}"
                      f"{did_you_mean(dtype, DTYPES)}")
            continue
        sample = d.get("sample")
        if sample is not None and sample not in SAMPLES:
            rep.error(src.at(path + ("sample",)), "E013",
                      f"input '{name}': sample must be one of {', '.join(SAMPLES)}, got "
                      f"{sample!r}{did_you_mean(str(sample), SAMPLES)}")
            continue
        if sample is not None and not dtype.startswith("float"):
            rep.error(src.at(path + ("dtype",)), "E013",
                      f"input '{name}': a sampled input holds floats, not {dtype}")
            continue
        out[name] = InputDef(name, tuple(shape), dtype, sample)
    return out


def _check_layer(src, rep, decl):
    """Validate one layer's op and attributes; returns node data or None."""
    at = src.at(decl.path)
    if decl.invalid:
        return None
    op = ops.get(decl.op)
    if op is None:
        choices = list(ops.REGISTRY)
        rep.error(src.at(decl.path + ("op",)), "E020",
                  f"unknown op '{decl.op}'{did_you_mean(decl.op, choices)}")
        return None
    if op.kind == "loss":
        rep.error(src.at(decl.path + ("op",)), "E020",
                  f"'{decl.op}' is a loss: list it under 'losses:', not 'layers:'")
        return None
    a = _check_attrs(src, rep, op, decl.attrs, decl.attr_paths, f"layer '{decl.name}'",
                     decl.path)
    if a is None:
        return None
    activation = a.pop("activation", None)
    return dict(kind="layer", op=op, attrs=a, activation=activation, inputs=decl.inputs,
                shape=None, dtype=None, params={}, state={}, cluster=decl.cluster, pos=at,
                path=decl.path, attr_paths=decl.attr_paths, name=decl.name)


def _check_attrs(src, rep, op, given: dict, paths: dict, who: str, lpath) -> Attrs | None:
    allowed = ops.layer_attrs(op)
    names = [x.name for x in allowed]
    ok = True
    a = Attrs()
    meant = set()           # required attributes an unknown one was a misspelling of
    for k, v in given.items():
        if k not in names:
            extra = ["op", "name", "in"]
            hint = did_you_mean(k, names + extra)
            target = next((at for at in allowed if at.required and at.name not in given
                           and hint == f" (did you mean '{at.name}'?)"), None)
            if target is not None:      # one mistake, one error: the missing one is this
                meant.add(target.name)
                hint = f" (did you mean '{target.name}'? {op.name} needs it" + \
                    (f": {target.doc})" if target.doc else ")")
            rep.error(src.at(paths.get(k, lpath + (k,)), key=True), "E011",
                      f"{who} ({op.name}): unknown attribute '{k}'{hint}")
            ok = False
    for at in allowed:
        if at.name in meant:
            continue
        if at.name in given:
            try:
                a[at.name] = at.type.check(given[at.name])
            except AttrError as e:
                rep.error(src.at(paths.get(at.name, lpath + (at.name,))), e.code,
                          f"{who} ({op.name}): {at.name}: {e}")
                ok = False
        elif at.required:
            rep.error(src.at(lpath), "E010",
                      f"{who} ({op.name}) needs '{at.name}' ({at.doc})" if at.doc else
                      f"{who} ({op.name}) needs '{at.name}'")
            ok = False
        else:
            a[at.name] = at.default
    return a if ok else None


def _check_losses(src, rep, losses, g) -> list:
    names = []
    if losses is None:
        return names
    if not isinstance(losses, list):
        rep.error(src.at(("losses",)), "E012", "'losses' must be a list")
        return names
    for i, l in enumerate(losses):
        path = ("losses", i)
        if not isinstance(l, dict):
            rep.error(src.at(path), "E012", "a loss is a mapping such as "
                      "{op: softmax_cross_entropy, in: [logits, label]}")
            continue
        kind = l.get("op")
        op = ops.get(kind) if isinstance(kind, str) else None
        if op is None or op.kind != "loss":
            if kind is None:
                rep.error(src.at(path), "E010", "loss has no 'op'")
            else:
                rep.error(src.at(path + ("op",)), "E020",
                          f"unknown loss '{kind}'{did_you_mean(kind, ops.losses())}; "
                          f"losses are {', '.join(ops.losses())}")
            continue
        name = l.get("name") or f"loss_{i + 1}"
        if not isinstance(name, str) or any(c in name for c in RESERVED):
            rep.error(src.at(path + ("name",)), "E012",
                      f"loss name must be a string without {_reserved()}")
            continue
        raw_in = l.get("in")
        if raw_in is None:
            rep.error(src.at(path), "E010", f"loss '{name}' needs 'in' (what it compares)")
            continue
        inputs = raw_in if isinstance(raw_in, list) else [raw_in]
        if not all(isinstance(x, str) for x in inputs):
            rep.error(src.at(path + ("in",)), "E012", "'in' of a loss names layers or inputs")
            continue
        attrs = {k: v for k, v in l.items() if k not in LOSS_KEYS}
        a = _check_attrs(src, rep, op, attrs, {k: path + (k,) for k in attrs},
                         f"loss '{name}'", path)
        if a is None:
            continue
        if name in g:
            rep.error(src.at(path), "E022", f"duplicate name '{name}'")
            continue
        g.add_node(name, kind="loss", op=op, attrs=a, activation=None, inputs=inputs,
                   shape=None, dtype=None, params={}, state={}, cluster=(), pos=src.at(path),
                   path=path, attr_paths={}, name=name)
        names.append(name)
    return names


def _connect(src, rep, g, aliases, declared):
    """Resolve every node's `inputs` and add the edges. A reference to a layer that was
    declared but rejected earlier is not reported again."""
    known = sorted(declared)
    hints = {}          # a block repeated 1000 times repeats its bad reference 1000 times
    for name, d in list(g.nodes(data=True)):
        if d["kind"] == "input":
            continue
        op = d["op"]
        if d["inputs"] is None:
            rep.error(d["pos"], "E021",
                      f"layer '{name}' has no input: the spec declares no inputs, "
                      "so give it 'in:'")
            d["inputs"], d["broken"] = [], True
            continue
        resolved, broken = [], False
        for j, ref in enumerate(d["inputs"]):
            ref = aliases.get(ref, ref)
            if ref not in g:
                broken = True
                if ref not in declared:
                    if ref not in hints:
                        hints[ref] = did_you_mean(ref, known)
                    hint = hints[ref]
                    if d.get("cluster") and not hint:      # a layer from a block's body
                        hint = " (inside a block, the block's input is written $input)"
                    rep.error(src.at(d["path"] + ("in",)), "E021",
                              f"{_who(d)}: unknown input '{ref}'{hint}")
                continue
            resolved.append(ref)
            g.add_edge(ref, name)
        d["inputs"], d["broken"] = resolved, broken
        lo, hi = op.inputs
        n = len(resolved)
        if not broken and (n < lo or (hi is not None and n > hi)):
            d["broken"] = True
            want = str(lo) if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            rep.error(src.at(d["path"] + ("in",)), "E024",
                      f"{_who(d)} ({op.name}) takes {want} input{'s' if want != '1' else ''}, "
                      f"got {n}")


def _who(d):
    return f"{'loss' if d['kind'] == 'loss' else 'layer'} '{d['name']}'"


def _check_outputs(src, rep, outputs, g, aliases, decls) -> list:
    if outputs is None:
        return [decls[-1]["name"]] if decls else []
    if isinstance(outputs, str):
        outputs = [outputs]
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        rep.error(src.at(("outputs",)), "E012", "'outputs' is a list of layer names")
        return []
    out = []
    for i, o in enumerate(outputs):
        o2 = aliases.get(o, o)
        if o2 in g and g.nodes[o2]["kind"] == "input":
            rep.error(src.at(("outputs", i)), "E021",
                      f"output '{o}' is an input: outputs name layers, whose values "
                      "predict() returns")
            continue
        if o2 not in g or g.nodes[o2]["kind"] == "loss":
            rep.error(src.at(("outputs", i)), "E021",
                      f"unknown output '{o}'{did_you_mean(o, [n for n in g if g.nodes[n]['kind'] != 'loss'])}")
            continue
        out.append(o2)
    return out




def _check_search(src, rep, doc, g, blocks, inputs, losses, train):
    layers = {n: d["op"] for n, d in g.nodes(data=True) if d.get("kind") == "layer"}
    instances = {l["name"]: dict((blocks.get(l.get("op")) or {}).get("params") or {})
                 for l in doc.get("layers") or []
                 if isinstance(l, dict) and l.get("op") in blocks and isinstance(l.get("name"), str)}
    keys = None
    if not rep.failed:
        keys = metrics.report_keys_of(g, losses, train, label_inputs_of(g, inputs))
    check_search(src, rep, doc["search"], layers, instances, keys)
