"""The checks that need the whole network: cycles, parameters, generated-code names, the
label contract of a named dataset, metrics and early stopping, and the warnings (unused
layers, a softmax or sigmoid before a loss that applies its own). spec/build.py runs them
once the graph is built; each reports to the Reporter where the spec wrote the problem."""
from __future__ import annotations

import math

import networkx as nx

from .. import initializers, metrics
from ..errors import did_you_mean
from ..graph import label_inputs_of
from ..ir import ident


# The named datasets whose labels are class indices, and how many classes each has.
CLASS_DATASETS = {"mnist_5k": 10, "digits": 10, "iris": 3, "wine": 3, "breast_cancer": 2,
                  "sequence_parity": 2, "tokens_majority": 2}


CLASS_LOSSES = ("softmax_cross_entropy", "max_margin")      # their targets are classes


def check_label_contract(src, rep, g, inputs, losses, train):
    """A named dataset of class indices against a loss target declared one-hot ([K]):
    what would fail only once training has loaded the data is said here, with the fix."""
    data = train.get("data") if isinstance(train, dict) else None
    if rep.failed or not isinstance(data, dict) or data.get("one_hot") or data.get("map") \
            or not isinstance(data.get("dataset"), str) \
            or data["dataset"] not in CLASS_DATASETS:
        return
    name, classes = data["dataset"], CLASS_DATASETS[data["dataset"]]
    for loss in losses:
        node = g.nodes[loss] if loss in g else {}
        op = getattr(node.get("op"), "name", None)
        targets = (node.get("inputs") or []) if op in CLASS_LOSSES else []
        for t in targets[1:2]:
            d = inputs.get(t) if isinstance(t, str) else None
            shape = getattr(d, "shape", None)
            if shape is not None and len(shape) == 1 and shape[0] > 1:
                rep.error(src.at(("inputs", t)), "E030",
                          f"input '{t}' has shape [{shape[0]}] (one-hot labels), but dataset "
                          f"'{name}' gives class indices (0 to {classes - 1}): add "
                          f"one_hot: true to train.data, or declare "
                          f"{t}: {{shape: [], dtype: int64}}")


def check_sampled_inputs(src, rep, g, inputs):
    """A sampled input (`sample:`) that only losses read would be a label drawn at random."""
    for name in label_inputs_of(g, inputs):
        if inputs[name].sample:
            rep.error(src.at(("inputs", name, "sample")), "E013",
                      f"input '{name}' is sampled ({inputs[name].sample}) but only losses "
                      f"read it, as a label or target: labels come from the data. Remove "
                      f"'sample' or feed '{name}' to a layer")


def check_metrics(src, rep, g, inputs, losses, train):
    """Metrics asked of losses they do not apply to, and an early-stopping monitor that
    training would not report."""
    if rep.failed:
        return
    labels = label_inputs_of(g, inputs)
    _, problems = metrics.plan(g, losses, train, labels)
    for path, message in problems:
        rep.error(src.at(path), "E013", message)
    es = train.get("early_stopping")
    monitor = es.get("monitor") if isinstance(es, dict) else None
    if isinstance(monitor, str) and not problems:
        keys = metrics.report_keys_of(g, losses, train, labels)
        known = keys + [f"val_{k}" for k in keys]
        if monitor not in known:
            rep.error(src.at(("train", "early_stopping", "monitor")), "E013",
                      f"early_stopping monitors '{monitor}', which training does not report"
                      f"{did_you_mean(monitor, known)}; it reports {', '.join(known)} (val_ "
                      f"ones with validation data)")


def check_init_from(src, rep, g, train):
    """init_from.skip names layers that have parameters."""
    init = train.get("init_from") if isinstance(train, dict) else None
    if rep.failed or not isinstance(init, dict):
        return
    layers = [n for n, d in g.nodes(data=True) if d.get("params")]
    for i, name in enumerate(init.get("skip", [])):
        if name not in layers:
            rep.error(src.at(("train", "init_from", "skip", i)), "E013",
                      f"init_from.skip: no layer '{name}' with parameters"
                      f"{did_you_mean(name, layers)}")


def check_acyclic(rep, g) -> set:
    """Report each cycle once; returns the nodes on or downstream of a cycle, whose shapes
    cannot be inferred."""
    bad = set()
    for component in nx.strongly_connected_components(g):
        first = next(iter(component))
        if len(component) == 1 and not g.has_edge(first, first):
            continue
        cycle = nx.find_cycle(g.subgraph(component))
        names = [u for u, _ in cycle] + [cycle[0][0]]
        rep.error(g.nodes[cycle[0][0]]["pos"], "E023",
                  f"layers form a cycle: {' -> '.join(names)}")
        bad |= component
    for n in list(bad):
        bad |= nx.descendants(g, n)
    return bad


def check_params(src, rep, g):
    """Parameter shapes, literal initializers that must fit them, and absurd sizes."""
    from ..passes.infer_shapes import MAX_PARAMS
    total = 0
    for name, d in g.nodes(data=True):
        if d["kind"] != "layer":
            continue
        for pname, spec in d["params"].items():
            count = math.prod(spec.shape)
            total += count
            if count > MAX_PARAMS:
                dims = "x".join(map(str, spec.shape))
                rep.error(d["pos"], "E031",
                          f"layer '{name}': {pname} has {dims} = {count:,} parameters "
                          f"({count * 4 / 2**30:.1f} GiB in float32), more than the limit of "
                          f"{MAX_PARAMS:,}")
            a = d["attrs"]
            init = a.get("bias_init") if spec.role == "bias" else a.get("weight_init")
            problem = initializers.fits(init, spec.shape) if init is not None else None
            if problem:
                key = "bias_init" if spec.role == "bias" else "weight_init"
                rep.error(src.at(d["attr_paths"].get(key, d["path"] + (key,))), "E030",
                          f"layer '{name}': {pname}: {problem}")
        lr = d["attrs"].get("lr_mult")
        if isinstance(lr, dict):
            for p in lr:
                if p not in d["params"]:
                    rep.error(src.at(d["attr_paths"].get("lr_mult", d["path"])), "E011",
                              f"layer '{name}': lr_mult names '{p}', but the layer's "
                              f"parameters are {', '.join(d['params']) or 'none'}"
                              f"{did_you_mean(p, d['params'])}")
    if total > MAX_PARAMS:
        rep.error((1, 1), "E031", f"the network has {total:,} parameters, more than the limit "
                                  f"of {MAX_PARAMS:,}")


def check_code_names(rep, g):
    """Generated code names a value `v_<name>` with '/', ':' and other characters made '_'
    (ir.ident): two names that come out the same would share a buffer."""
    seen = {}
    for name, d in g.nodes(data=True):
        forms = [("value", name)] + [("parameter", f"{name}.{p}") for p in d["params"]]
        if d.get("activation"):
            forms.append(("value", f"{name}:{d['activation'][0]}"))
        for kind, form in forms:
            first = seen.setdefault((kind, ident(form)), (form, name))
            if first[1] != name:
                rep.error(d["pos"], "E022",
                          f"{_what(form, name)} and {_what(*first)} would have the same name "
                          f"in generated code, '{ident(form)}'; rename '{name}'")
                break


def _what(form, owner) -> str:
    if form == owner:
        return f"'{owner}'"
    if form.startswith(owner + ":"):
        return f"the activation of '{owner}' ({form})"
    return f"the parameter {form}"


def warn_unused(rep, g, outputs, losses):
    if not outputs and not losses:
        return
    needed = set()
    for target in list(outputs) + list(losses):
        if target in g:
            needed |= nx.ancestors(g, target) | {target}
    for name, d in g.nodes(data=True):
        if name not in needed:
            what = "input" if d["kind"] == "input" else "layer"
            rep.warning(d["pos"], "W001",
                        f"{what} '{name}' is not used by any output or loss")


# A loss on logits and the activations that would squash its input a second time.
_LOGIT_LOSSES = {"softmax_cross_entropy": ("softmax", "log_softmax"),
                 "sigmoid_cross_entropy": ("sigmoid",)}


def warn_squashed_logits(rep, g, losses):
    for loss in losses:
        d = g.nodes[loss]
        squashes = _LOGIT_LOSSES.get(d["op"].name)
        src = d["inputs"][0] if squashes and d["inputs"] else None
        if src not in g:
            continue
        s = g.nodes[src]
        act = (s.get("activation") or (None,))[0]
        found = act if act in squashes else (s["op"].name if s["op"] is not None
                                             and s["op"].name in squashes else None)
        if found:
            rep.warning(d["pos"], "W002",
                        f"{d['op'].name} takes logits and applies the {squashes[0]} itself, "
                        f"but '{src}' already ends in {found}: it is applied twice, which "
                        f"slows or stalls learning. Drop the {found} from '{src}' (predict "
                        f"gives logits; `nngraph predict` writes the probabilities too)")
