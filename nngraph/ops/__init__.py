"""The op registry: every module in this package that defines `OP` is one op.

Adding an op means adding one file here; nothing else has to change.
"""
from __future__ import annotations

import importlib
import pkgutil

from .. import initializers, metrics
from .base import (REQUIRED, AnyValue, Attr, AttrError, Attrs, Bool, Choice, Float, Fusion, Str,
                   OpDef, ParamSpec, RunContext, ShapeError, StateSpec)

__all__ = ["REGISTRY", "get", "activations", "losses", "Attr", "Attrs", "OpDef", "ParamSpec",
           "StateSpec", "Fusion", "ShapeError", "AttrError", "REQUIRED", "layer_attrs",
           "validate_activation", "make_attrs", "RunContext"]

_NOT_OPS = {"base"}


def _discover() -> dict[str, OpDef]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_OPS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for op in getattr(module, "OPS", [getattr(module, "OP", None)]):
            if op is not None:
                found[op.name] = op
    return found


REGISTRY: dict[str, OpDef] = _discover()


def get(name: str) -> OpDef | None:
    return REGISTRY.get(name)


def activations() -> list[str]:
    return sorted(n for n, op in REGISTRY.items() if op.kind == "activation")


def losses() -> list[str]:
    return sorted(n for n, op in REGISTRY.items() if op.kind == "loss")


def is_parametric(op: OpDef) -> bool:
    from .base import _none
    return op.params is not _none


# ------------------------------------------------------------- attributes every layer has

def validate_activation(v):
    """`relu`, or `{leaky_relu: {alpha: 0.1}}`. Returns (name, {attrs})."""
    from ..errors import did_you_mean
    names = activations()
    if isinstance(v, str):
        name, args = v, {}
    elif isinstance(v, dict) and len(v) == 1:
        (name, args), = v.items()
        args = args or {}
        if not isinstance(args, dict):
            raise AttrError(f"activation '{name}' takes a mapping of attributes")
    else:
        raise AttrError("activation must be a name such as relu, or {name: {attributes}}")
    if name not in names:
        raise AttrError(f"unknown activation '{name}'{did_you_mean(name, names)}", "E013")
    op = REGISTRY[name]
    out = Attrs()
    for at in op.attrs:
        if at.name in args:
            out[at.name] = at.type.check(args[at.name])
        elif at.required:
            raise AttrError(f"activation '{name}' needs '{at.name}'", "E010")
        else:
            out[at.name] = at.default
    for k in args:
        if k not in op.attr_names:
            raise AttrError(f"activation '{name}' has no attribute '{k}'"
                            f"{did_you_mean(k, op.attr_names)}", "E011")
    return name, out


def _validate_regularizer(v):
    if not isinstance(v, dict):
        raise AttrError("regularizer is a mapping such as {l2: 0.0005}")
    from ..errors import did_you_mean
    out = {}
    for k, x in v.items():
        if k not in ("l1", "l2", "max_norm"):
            raise AttrError(f"unknown regularizer '{k}'{did_you_mean(k, ['l1', 'l2', 'max_norm'])}",
                            "E011")
        out[k] = Float(0.0, exclusive_min=(k == "max_norm")).check(x)
    return out


def _validate_lr_mult(v):
    if isinstance(v, dict):
        return {k: Float(0.0).check(x) for k, x in v.items()}
    return Float(0.0).check(v)


_INIT_SCHEMA = {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "object"},
                          {"type": "array"}]}

COMMON_ATTRS = (
    Attr("activation", AnyValue({"oneOf": [{"type": "string"}, {"type": "object"}]},
                                validate_activation), None,
         "activation applied to the layer's output"),
)

PARAM_ATTRS = (
    Attr("weight_init", AnyValue(_INIT_SCHEMA, initializers.validate), None,
         "initializer of the weights"),
    Attr("bias_init", AnyValue(_INIT_SCHEMA, initializers.validate), None,
         "initializer of the biases"),
    Attr("use_bias", Bool(), True, "whether the layer has a bias"),
    Attr("trainable", Bool(), True, "false freezes every parameter of the layer"),
    Attr("shares", Str(), None, "use the parameters of this other layer (same op, same "
         "shapes) instead of its own: the two are tied and their gradients add up"),
    Attr("lr_mult", AnyValue({"oneOf": [{"type": "number", "minimum": 0}, {"type": "object"}]},
                             _validate_lr_mult), 1.0,
         "learning-rate multiplier, or a map param -> multiplier; 0 freezes"),
    Attr("regularizer", AnyValue({"type": "object", "properties": {
        "l1": {"type": "number"}, "l2": {"type": "number"}, "max_norm": {"type": "number"}},
        "additionalProperties": False}, _validate_regularizer), None,
         "{l1: .., l2: .., max_norm: ..}"),
)

LOSS_ATTRS = (
    Attr("weight", Float(0.0), 1.0, "this loss's weight in the total"),
    Attr("reduction", Choice(("mean", "sum")), "mean", "mean or sum over the batch"),
    Attr("metrics", AnyValue(metrics.SCHEMA, metrics.parse), None,
         "what to report beside the loss: " + ", ".join(metrics.NAMES)),
)


def make_attrs(op: OpDef | str, **given) -> Attrs:
    """Validated attributes with defaults filled in, as the spec loader would make them:
    `make_attrs("conv2d", filters=6, kernel=5)`. Raises AttrError."""
    op = REGISTRY[op] if isinstance(op, str) else op
    a = Attrs()
    for at in layer_attrs(op):
        if at.name in given:
            a[at.name] = at.type.check(given.pop(at.name))
        elif at.required:
            raise AttrError(f"{op.name} needs '{at.name}'", "E010")
        else:
            a[at.name] = at.default
    if given:
        raise AttrError(f"{op.name} has no attribute(s) {', '.join(given)}", "E011")
    return a


def layer_attrs(op: OpDef) -> tuple:
    """Every attribute a layer of this op accepts, its own first."""
    if op.kind == "loss":
        return tuple(op.attrs) + LOSS_ATTRS
    common = COMMON_ATTRS if op.takes_activation else ()
    return tuple(op.attrs) + common + (PARAM_ATTRS if is_parametric(op) else ())
