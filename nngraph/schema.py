"""JSON Schema (draft 2020-12) of spec format v1, generated from the op registry and the
tables the spec loader checks against, so it cannot drift from what `nngraph.load` accepts.

Editors use it to complete and check specs as they are typed (YAML or JSON alike):

    # yaml-language-server: $schema=nngraph-spec.schema.json

The loader stays the authority: it also checks what a schema cannot express (that `in`
names an existing layer, shapes, a block's `$parameters`).
"""
from __future__ import annotations

import json

from . import metrics, ops
from .ops.base import REQUIRED
from .spec.build import DTYPES, MAX_DIM, REQUIRED_TOP, SAMPLES
from .spec.phases_schema import PHASE_DOCS, PHASE_KEYS
from .spec.search_schema import (DIRECTIONS, MAX_TRIALS, PRUNERS, SAMPLERS, SEARCH_DOCS,
                                 SEARCH_KEYS)
from .spec.train_schema import (DATA_DEFAULTS, DATA_DOCS, DATA_KEYS, EARLY_STOPPING_DEFAULTS,
                                EARLY_STOPPING_DOCS, EARLY_STOPPING_KEYS, INIT_FROM_DOCS,
                                INIT_FROM_KEYS, OPTIMIZER_DEFAULTS,
                                OPTIMIZER_DOCS, OPTIMIZERS, TRAIN_DEFAULTS, TRAIN_DOCS,
                                TRAIN_KEYS)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
NAME = {"type": "string", "minLength": 1, "pattern": "^[^/.]+$",
        "description": "unique name; '/' and '.' are reserved for blocks and parameters"}
REFS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "the layer or input read, or a list of them"}


def json_schema() -> dict:
    """The whole schema, as a dict ready for `json.dumps`.

        >>> import jsonschema, yaml
        >>> jsonschema.validate(yaml.safe_load(open("specs/lenet5.yaml")), json_schema())
    """
    layer_ops = [n for n, op in ops.REGISTRY.items() if op.kind != "loss"]
    defs = {f"layer_{n}": _op_schema(ops.REGISTRY[n], loss=False) for n in layer_ops}
    defs.update({f"loss_{n}": _op_schema(ops.REGISTRY[n], loss=True) for n in ops.losses()})
    defs.update(input=_input_schema(), layer=_dispatch(layer_ops, "layer", _instance_schema()),
                loss=_dispatch(ops.losses(), "loss", None), train=_train_schema(),
                block=_block_schema(), search=_search_schema())
    top = {
        "nngraph": {"const": 1, "description": "spec format version"},
        "name": {"type": "string", "minLength": 1, "description": "the network's name"},
        "description": {"type": "string", "description": "what the network is, in words"},
        "inputs": {"type": "object", "minProperties": 1, "propertyNames": NAME,
                   "additionalProperties": {"$ref": "#/$defs/input"},
                   "description": "named graph inputs; shapes exclude the batch dimension"},
        "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"},
                   "description": "ordered; a layer without `in` reads the previous layer"},
        "outputs": {**REFS, "description": "what predict() returns"},
        "losses": {"type": "array", "items": {"$ref": "#/$defs/loss"},
                   "description": "total loss = sum of weight * loss"},
        "train": {"$ref": "#/$defs/train", "description": "optimizer, batch size, epochs "
                  "and data: the defaults of `nngraph train` and Model.fit"},
        "blocks": {"type": "object", "additionalProperties": {"$ref": "#/$defs/block"},
                   "description": "reusable sub-graphs, instantiated as {op: <block name>}"},
        "search": {"$ref": "#/$defs/search", "description": "a hyperparameter search space "
                   "for `nngraph search` (Optuna); training ignores it"},
        "overrides": {"type": "object", "propertyNames": {"pattern": "^[^.]+\\.[^.]+$"},
                      "description": "LAYER.ATTR -> value: attributes of layers inside block "
                      "instances ({res_1/conv.filters: 32}), set after the blocks expand"},
    }
    return {
        "$schema": DRAFT,
        "$id": "urn:nngraph:spec:v1",
        "title": "nngraph network spec, format version 1",
        "type": "object",
        "required": list(REQUIRED_TOP),
        "properties": top,
        "additionalProperties": False,
        # Block names are data, which a schema cannot look up; so only a spec without
        # blocks can have an unregistered `op` rejected here (a misspelling, surely).
        "if": {"not": {"required": ["blocks"]}},
        "then": {"properties": {"layers": {"items": {"properties": {
            "op": {"enum": layer_ops}}}}}},
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as indented JSON text, as `nngraph schema` prints it."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False)


# ------------------------------------------------------------------------------ layers

def _op_schema(op, loss: bool) -> dict:
    """One op's item: its attributes, `op`/`name`/`in`, nothing else."""
    props = {"op": {"const": op.name}, "name": NAME, "in": REFS}
    required = ["op"] + (["in"] if loss else [])
    for at in ops.layer_attrs(op):
        props[at.name] = attr_schema(at)
        if at.required:
            required.append(at.name)
    out = {"type": "object", "properties": props, "required": required,
           "additionalProperties": False}
    if op.doc:
        out["description"] = op.doc
    return out


def attr_schema(at) -> dict:
    """One attribute's schema, with its description and (where JSON can hold it) default."""
    s = dict(at.type.schema())
    if at in ops.COMMON_ATTRS and at.name == "activation":
        s = _activation_schema()
    if at.doc:
        s["description"] = at.doc
    default = at.default
    if default is not REQUIRED and default is not None:
        default = list(default) if isinstance(default, tuple) else default
        try:
            json.dumps(default)
            s["default"] = default
        except TypeError:
            pass                          # not representable in JSON: leave it undocumented
    return s


def _activation_schema() -> dict:
    names = ops.activations()
    return {"oneOf": [
        {"enum": names},
        {"type": "object", "minProperties": 1, "maxProperties": 1,
         "propertyNames": {"enum": names},
         "additionalProperties": {"type": ["object", "null"]}},
    ]}


def _dispatch(names: list, prefix: str, otherwise: dict | None) -> dict:
    """An item checked by the schema its `op` selects (if/then: an editor then reports the
    one relevant mistake, where oneOf would report one per op)."""
    rules = [{"if": {"properties": {"op": {"const": n}}},
              "then": {"$ref": f"#/$defs/{prefix}_{n}"}} for n in names]
    if otherwise is not None:
        rules.append({"if": {"properties": {"op": {"not": {"enum": names}}}},
                      "then": otherwise})
    op = {"type": "string"} if otherwise is not None else {"enum": names}
    return {"type": "object", "required": ["op"], "properties": {"op": op}, "allOf": rules}


def _instance_schema() -> dict:
    """A block instantiation: `op` names a block; other keys are the block's parameters."""
    props = {"op": {"type": "string", "description": "a block defined under `blocks:`"},
             "name": NAME, "in": REFS,
             "repeat": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1,
                        "description": "chain this many instances"},
             "shares": {"type": "string",
                        "description": "another instance of the same block whose parameters "
                                       "this one uses: its layer X uses that instance's X"}}
    return {"type": "object", "properties": props, "required": ["op"]}


def _block_schema() -> dict:
    # Block layers may hold "$param" strings in any value, so only `op` is checked there.
    layer = {"type": "object", "required": ["op"], "properties": {"op": {"type": "string"}}}
    props = {"params": {"type": "object", "description": "parameter names and defaults"},
             "layers": {"type": "array", "minItems": 1, "items": layer,
                        "description": "the block's layers; `$input` is its input, `$name` a "
                                       "parameter"},
             "output": {"type": "string", "description": "the layer the block returns "
                                                          "(default: its last)"},
             "description": {"type": "string", "description": "what the block computes"}}
    return {"type": "object", "properties": props, "required": ["layers"],
            "additionalProperties": False}


def _input_schema() -> dict:
    props = {"shape": {"type": "array",
                       "items": {"type": "integer", "minimum": 1, "maximum": MAX_DIM},
                       "description": "without the batch dimension; [] for a scalar"},
             "dtype": {"enum": list(DTYPES), "default": "float32",
                       "description": "int64/int32 for class or token indices; a float "
                                      "input runs in the model's dtype (compile(dtype=...)) "
                                      "whichever float is named"},
             "description": {"type": "string", "description": "what the input holds"},
             "sample": {"enum": list(SAMPLES),
                        "description": "drawn by the model for every batch instead of read "
                                       "from the data (a GAN's noise): normal is N(0, 1), "
                                       "uniform is U[-1, 1]; a caller may still pass it"}}
    return {"type": "object", "properties": props, "required": ["shape"],
            "additionalProperties": False}


# ------------------------------------------------------------------------------ train

def _table(table: dict, docs: dict, defaults: dict, special: dict | None = None) -> dict:
    """An object whose keys are a train_schema table: typed keys use their type's schema,
    the others `special`'s; each with its description and, where it has one, its default."""
    special = special or {}
    props = {}
    for k, t in table.items():
        s = dict(special.get(k, {})) if t is None else t.schema()
        if k in docs:
            s.setdefault("description", docs[k])
        if k in defaults:
            s["default"] = defaults[k]
        props[k] = s
    return {"type": "object", "properties": props, "additionalProperties": False}


def _optimizer_schema() -> dict:
    names = list(OPTIMIZERS)
    rules = []
    for n, table in OPTIMIZERS.items():
        s = _table({**table, "type": None}, OPTIMIZER_DOCS, OPTIMIZER_DEFAULTS[n],
                   {"type": {"const": n}})
        # An optimizer without `type` is sgd, as the loader reads it.
        when = ({"anyOf": [{"required": ["type"], "properties": {"type": {"const": n}}},
                           {"not": {"required": ["type"]}}]} if n == "sgd" else
                {"required": ["type"], "properties": {"type": {"const": n}}})
        rules.append({"if": when, "then": s})
    # if/else rather than oneOf, so a wrong key is reported as itself, not as "no match".
    return {"type": ["string", "object"], "description": "a name, or {type: .., lr: ..}",
            "if": {"type": "string"}, "then": {"enum": names},
            "else": {"properties": {"type": {"enum": names}}, "allOf": rules}}


def _train_schema() -> dict:
    data = _table(DATA_KEYS, DATA_DOCS, DATA_DEFAULTS, {
        "inline": {"type": "object"},
        "map": {"type": "object", "additionalProperties": {"type": "string"}},
    })
    data["oneOf"] = [{"required": [k]} for k in ("dataset", "npz", "csv", "images", "inline")]
    return _table(TRAIN_KEYS, TRAIN_DOCS, TRAIN_DEFAULTS, {
        "optimizer": _optimizer_schema(),
        "data": data,
        "early_stopping": _table(EARLY_STOPPING_KEYS, EARLY_STOPPING_DOCS,
                                 EARLY_STOPPING_DEFAULTS),
        "metrics": {**metrics.SCHEMA,
                    "description": "metrics of every loss they apply to (a loss's own "
                                   "`metrics:` wins)"},
        "init_from": {"anyOf": [{"type": "string"}, {
            **_table(INIT_FROM_KEYS, INIT_FROM_DOCS, {},
                     {"skip": {"type": "array", "items": {"type": "string"}}}),
            "required": ["file"]}], "description": TRAIN_DOCS["init_from"]},
        "phases": {"type": "array", "minItems": 1, "description": TRAIN_DOCS["phases"],
                   "items": {**_table(PHASE_KEYS, PHASE_DOCS, {}, {
                       "losses": {"type": "array", "items": {"type": "string"}},
                       "params": {"type": "array", "items": {"type": "string"}},
                       "optimizer": _optimizer_schema()}),
                       "required": ["name"],
                       "oneOf": [{"required": ["epochs"]}, {"required": ["steps"]}]}},
    })


def _search_schema() -> dict:
    pair = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    ranges = [
        {"required": ["uniform"], "properties": {"uniform": pair}, "additionalProperties": False},
        {"required": ["log_uniform"], "properties": {"log_uniform": pair},
         "additionalProperties": False},
        {"required": ["int"], "properties": {
            "int": {**pair, "items": {"type": "integer"}},
            "step": {"type": "integer", "minimum": 1}}, "additionalProperties": False},
        {"required": ["choice"], "properties": {"choice": {"type": "array", "minItems": 1}},
         "additionalProperties": False},
    ]
    special = {
        "metric": {"type": "string"},
        "direction": {"enum": list(DIRECTIONS)},
        "sampler": {"enum": list(SAMPLERS), "default": "tpe"},
        "trials": {"type": "integer", "minimum": 1, "maximum": MAX_TRIALS},
        "pruner": {"enum": list(PRUNERS), "default": "none"},
        "seed": {"type": "integer", "minimum": 0},
        "space": {"type": "object", "minProperties": 1,
                  "propertyNames": {"pattern": "\\."}, "additionalProperties": {"oneOf": ranges}},
    }
    out = _table(dict.fromkeys(SEARCH_KEYS), SEARCH_DOCS, {}, special)
    out["required"] = ["space"]
    return out
