"""Flatten `layers:` into a list of layer declarations: implicit chaining, automatic names,
and `blocks:` instantiated (with `repeat:` and `$parameters`).

    blocks:
      residual:
        params: {filters: 16}
        layers:
          - {op: conv2d, name: a, filters: $filters, kernel: 3, padding: same, activation: relu}
          - {op: conv2d, name: b, filters: $filters, kernel: 3, padding: same}
          - {op: add, in: [$input, b], activation: relu}
    layers:
      - {op: residual, name: res, repeat: 2}      # layers res_1/a ... res_2/add_1

Each instance's layers are named `<instance>/<local name>`; a reference to the instance name
means its output (its last layer, or the block's `output:`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Reporter, did_you_mean
from .source import Source

MAX_BLOCK_DEPTH = 8
MAX_LAYERS = 20_000
BLOCK_KEYS = ("params", "layers", "output", "description")
INSTANCE_KEYS = ("op", "name", "in", "repeat", "shares")


@dataclass
class LayerDecl:
    name: str
    op: str
    attrs: dict                       # everything but op / name / in, parameters substituted
    inputs: list | None               # resolved names; None = the previous layer's output
    path: tuple                       # where the layer is written in the source
    attr_paths: dict = field(default_factory=dict)   # attr -> path of the value as written
    cluster: tuple = ()               # enclosing block instances, outermost first
    block_site: tuple | None = None   # path of the instantiating layer, for messages
    invalid: bool = False             # already reported (a bad $parameter): check no further


@dataclass
class Expansion:
    layers: list
    aliases: dict                     # block instance name -> name of its output layer
    clusters: dict                    # instance name -> block name
    rejected: set = field(default_factory=set)   # instances already reported as unusable
    shares: dict = field(default_factory=dict)   # instance -> (instance whose parameters it
                                                 # uses, spec path of `shares:`)


class _Expander:
    def __init__(self, src: Source, rep: Reporter, blocks: dict):
        self.src, self.rep, self.blocks = src, rep, blocks
        self.out = Expansion([], {}, {})
        self.counters: dict[str, int] = {}
        self.bad_substitution = False        # set by substitute() for the current layer

    def auto_name(self, scope: str, op: str) -> str:
        key = f"{scope}{op}"
        self.counters[key] = self.counters.get(key, 0) + 1
        return f"{scope}{op}_{self.counters[key]}"

    def run(self, layers, path, scope="", env=None, block_input=None, prev=None, cluster=(),
            depth=0, site=None):
        """Expand `layers` (written at `path`); returns the name of the last layer.
        `block_input` is what `$input` means (None at top level); `prev` is what a first
        layer without `in` reads."""
        env = env or {}
        local = {l.get("name") for l in layers
                 if isinstance(l, dict) and isinstance(l.get("name"), str)}
        for i, raw_layer in enumerate(layers):
            lpath = path + (i,)
            if len(self.out.layers) > MAX_LAYERS:
                self.rep.error(self.src.at(lpath), "E003",
                               f"the network expands to more than {MAX_LAYERS:,} layers")
                return prev
            if not isinstance(raw_layer, dict):
                self.rep.error(self.src.at(lpath), "E012",
                               "a layer is a mapping such as {op: dense, units: 10}")
                continue
            paths = {k: self.param_site(v, env) or lpath + (k,) for k, v in raw_layer.items()}
            self.bad_substitution = False
            layer = {k: self.substitute(v, env, lpath + (k,)) for k, v in raw_layer.items()}
            invalid = self.bad_substitution
            op = layer.get("op")
            if op is None:
                self.rep.error(self.src.at(lpath), "E010", "layer has no 'op'")
                continue
            if not isinstance(op, str):
                self.rep.error(self.src.at(lpath + ("op",)), "E012", "'op' must be a string")
                continue
            name = layer.get("name")
            if name is not None and (not isinstance(name, str) or not name or "/" in name
                                     or "." in name):
                self.rep.error(self.src.at(lpath + ("name",)), "E012",
                               f"layer name must be a non-empty string without '/' or '.', "
                               f"got {name!r}")
                if isinstance(name, str):        # what reads it is not reported again
                    self.out.rejected.add(scope + name)
                name = None
            full = scope + name if name else self.auto_name(scope, op)
            inputs = self.inputs(layer.get("in"), lpath, scope, local, block_input, prev)
            if op in self.blocks:
                prev = self.instantiate(layer, op, full, inputs, lpath, cluster, depth)
                continue
            attrs = {k: v for k, v in layer.items() if k not in ("op", "name", "in")}
            self.out.layers.append(LayerDecl(full, op, attrs, inputs, lpath,
                                             {k: paths[k] for k in attrs}, cluster, site,
                                             invalid))
            prev = full
        return prev

    @staticmethod
    def param_site(v, env):
        """Where a `$param` value was really written: the instantiating layer, or the default."""
        if isinstance(v, str) and v.startswith("$"):
            return env.get(("$at", v[1:]))
        return None

    def inputs(self, raw, lpath, scope, local, block_input, prev):
        if raw is None:
            return None if prev is None else [prev]
        items = raw if isinstance(raw, list) else [raw]
        out = []
        for j, r in enumerate(items):
            if not isinstance(r, str):
                at = self.src.at(lpath + ("in",) + ((j,) if isinstance(raw, list) else ()))
                self.rep.error(at, "E012", f"'in' names layers or inputs; got {r!r}")
                continue
            if r == "$input":
                if block_input is None:
                    self.rep.error(self.src.at(lpath + ("in",)), "E040",
                                   "'$input' is only meaningful inside a block")
                    continue
                out.append(block_input)
            elif r in local:
                out.append(scope + r)
            else:
                out.append(r)
        return out

    def substitute(self, v, env, path):
        if isinstance(v, str) and v.startswith("$") and v != "$input":
            key = v[1:]
            if key in env:
                return env[key]
            self.bad_substitution = True
            known = [k for k in env if isinstance(k, str)]
            self.rep.error(self.src.at(path), "E040",
                           f"unknown block parameter '{v}'"
                           f"{did_you_mean(key, known) if known else ' (not inside a block with params)'}")
            return None
        if isinstance(v, list):
            return [self.substitute(x, env, path + (i,)) for i, x in enumerate(v)]
        if isinstance(v, dict):
            return {k: self.substitute(x, env, path + (k,)) for k, x in v.items()}
        return v

    def reject(self, full: str) -> str:
        """An instance that could not be expanded: what reads it is not checked further."""
        self.out.rejected.add(full)
        return full

    def instantiate(self, layer, bname, full, inputs, lpath, cluster, depth):
        block = self.blocks[bname]
        bpath = ("blocks", bname)
        if depth >= MAX_BLOCK_DEPTH:
            self.rep.error(self.src.at(lpath), "E040",
                           f"blocks nest more than {MAX_BLOCK_DEPTH} deep (does '{bname}' "
                           "instantiate itself?)")
            return self.reject(full)
        params = block.get("params") or {}
        repeat = layer.get("repeat", 1)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 1000:
            self.rep.error(self.src.at(lpath + ("repeat",)), "E013",
                           f"repeat must be an integer from 1 to 1000, got {repeat!r}")
            repeat = 1
        env = dict(params)
        for k, v in layer.items():
            if k in INSTANCE_KEYS:
                continue
            if k not in params:
                self.rep.error(self.src.at(lpath + (k,), key=True), "E011",
                               f"block '{bname}' has no parameter '{k}'"
                               f"{did_you_mean(k, list(params) + list(INSTANCE_KEYS))}")
                continue
            env[k] = v
            env[("$at", k)] = lpath + (k,)
        for k in params:
            env.setdefault(("$at", k), bpath + ("params", k))
        if inputs is not None and len(inputs) != 1:
            self.rep.error(self.src.at(lpath + ("in",)), "E024",
                           f"block '{bname}' takes one input, got {len(inputs)}")
        current = inputs[0] if inputs else None
        if current is None:
            self.rep.error(self.src.at(lpath), "E040",
                           f"block '{bname}' needs an input (it cannot be the first layer "
                           "when there is no input to read)")
            return self.reject(full)
        if "shares" in layer:
            if not isinstance(layer["shares"], str):
                self.rep.error(self.src.at(lpath + ("shares",)), "E012",
                               "shares names another instance of the block, got "
                               f"{layer['shares']!r:.60}")
            elif repeat == 1:
                self.out.shares[full] = (layer["shares"], lpath + ("shares",))
            else:
                self.rep.error(self.src.at(lpath + ("shares",)), "E013",
                               "shares: an instance repeated several times cannot share "
                               "another's parameters; write the instances out one by one")
        for k in range(1, repeat + 1):
            inst = full if repeat == 1 else f"{full}_{k}"
            self.out.clusters[inst] = bname
            last = self.run(block.get("layers") or [], bpath + ("layers",), inst + "/", env,
                            current, current, cluster + (inst,), depth + 1, lpath)
            out_name = block.get("output")
            last = f"{inst}/{out_name}" if isinstance(out_name, str) else last
            self.out.aliases[inst] = last
            current = last
        if repeat > 1:
            self.out.aliases[full] = current
        return current


def check_blocks(src: Source, rep: Reporter, blocks) -> dict:
    """Validate the `blocks:` section's own keys; returns {name: block} of usable blocks."""
    if blocks is None:
        return {}
    if not isinstance(blocks, dict):
        rep.error(src.at(("blocks",)), "E012", "'blocks' is a mapping from block name to block")
        return {}
    good = {}
    for bname, block in blocks.items():
        path = ("blocks", bname)
        if not isinstance(block, dict):
            rep.error(src.at(path), "E012", f"block '{bname}' must be a mapping with 'layers'")
            continue
        for k in block:
            if k not in BLOCK_KEYS:
                rep.error(src.at(path + (k,), key=True), "E011",
                          f"block '{bname}': unknown key '{k}'{did_you_mean(k, BLOCK_KEYS)}")
        if not isinstance(block.get("layers"), list) or not block["layers"]:
            rep.error(src.at(path), "E010", f"block '{bname}' needs a non-empty 'layers' list")
            continue
        for k in ("output", "description"):
            if block.get(k) is not None and not isinstance(block[k], str):
                rep.error(src.at(path + (k,)), "E012", f"block '{bname}': '{k}' must be a string")
        if block.get("params") is not None and not isinstance(block["params"], dict):
            rep.error(src.at(path + ("params",)), "E012",
                      f"block '{bname}': 'params' maps parameter names to default values")
            continue
        good[bname] = block
    return good


def expand(src: Source, rep: Reporter, layers, blocks: dict, first_input: str | None) -> Expansion:
    """The top level: the first layer without `in` reads the first declared input."""
    ex = _Expander(src, rep, blocks)
    ex.run(layers, ("layers",), prev=first_input)
    return ex.out
