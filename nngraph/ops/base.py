"""What an op is: its attributes, shape rule, parameters, FLOPs, reference rules, fusion class.

Every op lives in one file of this package and defines `OP = OpDef(...)`; the registry in
`__init__.py` collects them. Machinery (spec validation, shape inference, autodiff, codegen)
asks the registry and never special-cases an op by name.

Shapes are tuples of ints *without* the batch dimension. Reference rules take and return numpy
arrays *with* the batch dimension first:

    forward(ctx, a, xs, p) -> y                    xs: list of inputs, p: {param: array}
    backward(ctx, a, xs, p, y, gy) -> (gxs, gp)    gxs: list (None where no gradient), gp: dict

`ctx.saved` is a per-node dict that forward may fill for backward (dropout's mask, an LSTM's
gates); `ctx.state` holds persistent non-trainable state (batchnorm running statistics);
`ctx.training` and `ctx.rng` say how to treat dropout and noise.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable

REQUIRED = object()


class Fusion(enum.IntEnum):
    """The fusion lattice of DESIGN.md: a group's class is the max of its members'."""
    ELEMWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCTION = 3
    ANCHOR = 4
    OPAQUE = 5


class ShapeError(Exception):
    """Raised by a shape rule; `attr` names the attribute to point at, if one is to blame."""

    def __init__(self, message: str, attr: str | None = None, code: str = "E030"):
        super().__init__(message)
        self.attr, self.code = attr, code


class AttrError(Exception):
    def __init__(self, message: str, code: str = "E012"):
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------ attribute types

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class Int:
    min: int | None = None
    max: int | None = None

    def check(self, v):
        if not _is_int(v):
            raise AttrError(f"expected an integer, got {_show(v)}")
        _check_range(v, self.min, self.max)
        return v

    def schema(self):
        return _with_range({"type": "integer"}, self.min, self.max)


@dataclass(frozen=True)
class Float:
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False          # rates and momenta: 1 itself is not allowed

    def check(self, v):
        if not _is_number(v):
            raise AttrError(f"expected a number, got {_show(v)}")
        if math.isnan(v):
            raise AttrError("expected a number, got NaN", "E013")
        if self.exclusive_min and self.min is not None and v <= self.min:
            raise AttrError(f"must be > {self.min}, got {v}", "E013")
        if self.exclusive_max and self.max is not None and v >= self.max:
            raise AttrError(f"must be < {self.max}, got {v}", "E013")
        _check_range(v, self.min, self.max)
        return float(v)

    def schema(self):
        s = _with_range({"type": "number"}, None if self.exclusive_min else self.min,
                        None if self.exclusive_max else self.max)
        if self.exclusive_min and self.min is not None:
            s["exclusiveMinimum"] = self.min
        if self.exclusive_max and self.max is not None:
            s["exclusiveMaximum"] = self.max
        return s


@dataclass(frozen=True)
class Bool:
    def check(self, v):
        if not isinstance(v, bool):
            raise AttrError(f"expected true or false, got {_show(v)}")
        return v

    def schema(self):
        return {"type": "boolean"}


@dataclass(frozen=True)
class Str:
    def check(self, v):
        if not isinstance(v, str):
            raise AttrError(f"expected a string, got {_show(v)}")
        return v

    def schema(self):
        return {"type": "string"}


@dataclass(frozen=True)
class Choice:
    options: tuple

    def check(self, v):
        if v not in self.options:
            from ..errors import did_you_mean
            raise AttrError(f"expected one of {', '.join(map(str, self.options))}; got "
                            f"{_show(v)}{did_you_mean(v, self.options)}", "E013")
        return v

    def schema(self):
        return {"enum": list(self.options)}


@dataclass(frozen=True)
class IntTuple:
    """An int, or a list of `n` ints; normalised to a tuple of n ints (kernel, stride, size).
    No window, step or padding may exceed the largest dimension an input may have."""
    n: int
    min: int = 1
    max: int = 1 << 24

    def check(self, v):
        vals = [v] * self.n if _is_int(v) else v
        if not isinstance(vals, list) or len(vals) != self.n or not all(map(_is_int, vals)):
            raise AttrError(f"expected an integer or a list of {self.n} integers, got {_show(v)}")
        for x in vals:
            _check_range(x, self.min, self.max)
        return tuple(vals)

    def schema(self):
        one = _with_range({"type": "integer"}, self.min, self.max)
        return {"oneOf": [one, {"type": "array", "items": one,
                                "minItems": self.n, "maxItems": self.n}]}


@dataclass(frozen=True)
class Padding:
    """'valid', 'same', an int, or a list of n ints. Normalised to a str or a tuple."""
    n: int

    def check(self, v):
        if v in ("valid", "same"):
            return v
        if isinstance(v, str):
            from ..errors import did_you_mean
            raise AttrError(f"padding must be 'valid', 'same' or a number, got "
                            f"{_show(v)}{did_you_mean(v, ['valid', 'same'])}", "E013")
        return IntTuple(self.n, min=0).check(v)

    def schema(self):
        return {"oneOf": [{"enum": ["valid", "same"]}, IntTuple(self.n, 0).schema()]}


@dataclass(frozen=True)
class IntList:
    """A list of ints (a shape); `allow_minus_one` for reshape's inferred dimension."""
    allow_minus_one: bool = False

    def check(self, v):
        if not isinstance(v, list) or not all(map(_is_int, v)):
            raise AttrError(f"expected a list of integers, got {_show(v)}")
        for x in v:
            if x == -1 and self.allow_minus_one:
                continue
            if x < 1:
                raise AttrError(f"dimensions must be >= 1, got {x}", "E013")
        if self.allow_minus_one and v.count(-1) > 1:
            raise AttrError("at most one dimension may be -1", "E013")
        return tuple(v)

    def schema(self):
        return {"type": "array", "items": {"type": "integer"}}


@dataclass(frozen=True)
class AnyValue:
    """Checked elsewhere (initializers, regularizers, activations have their own validators)."""
    json_schema: dict = field(default_factory=dict)
    validator: Callable | None = None

    def check(self, v):
        return self.validator(v) if self.validator else v

    def schema(self):
        return dict(self.json_schema)


def _show(v) -> str:
    if isinstance(v, str):
        return f"'{v}'"
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, dict)):
        return f"a {'list' if isinstance(v, list) else 'mapping'}"
    return repr(v)


def _check_range(v, lo, hi):
    if lo is not None and v < lo:
        raise AttrError(f"must be >= {lo}, got {v}", "E013")
    if hi is not None and v > hi:
        raise AttrError(f"must be <= {hi}, got {v}", "E013")


def _with_range(s, lo, hi):
    if lo is not None:
        s["minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    return s


@dataclass(frozen=True)
class Attr:
    name: str
    type: Any
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


# ------------------------------------------------------------------------ params and ops

@dataclass(frozen=True)
class ParamSpec:
    """A trainable parameter. `role` picks the initializer attribute: 'weight' uses
    `weight_init`, 'bias' uses `bias_init`; other roles use `init` unless overridden."""
    shape: tuple
    init: Any = "glorot_uniform"
    role: str = "weight"              # weight | bias | other
    fan_in: int = 1
    fan_out: int = 1
    regularize: bool = True           # L1/L2/max-norm apply to weights, not biases


@dataclass(frozen=True)
class StateSpec:
    """Non-trainable persistent state, such as batchnorm's running mean."""
    shape: tuple
    init: float = 0.0


class Attrs(dict):
    """Validated attributes with attribute access: `a.units`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _none(*_):
    return {}


def _zero_flops(*_):
    return 0


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: str                          # layer | activation | merge | reshape | noise | loss
    fusion: Fusion
    shape: Callable                    # (a, in_shapes) -> out_shape
    attrs: tuple = ()
    inputs: tuple = (1, 1)             # (min, max) number of inputs; max None = any
    params: Callable = _none           # (a, in_shapes) -> {name: ParamSpec}
    state: Callable = _none            # (a, in_shapes) -> {name: StateSpec}
    flops: Callable = _zero_flops      # (a, in_shapes, out_shape) -> int, per sample
    forward: Callable | None = None
    backward: Callable | None = None
    scalar: tuple | None = None        # elementwise: (fwd(x, a), bwd(x, y, gy, a)) as source strings
    takes_activation: bool = True      # accepts `activation:` as an attribute
    differentiable_inputs: tuple | None = None   # indices with gradients; None = all
    int_inputs: tuple = ()             # indices that must hold integers (embedding indices)
    task: str | None = None            # losses: what prediction and target are, for metrics
                                       # (nngraph/metrics.py: classes, logits, signs, values)
    borrows: Callable | None = None    # (graph, name) -> ({local param: 'layer.param'}, attrs):
                                       # parameters of other layers this node reads (and sends
                                       # gradients to), found once shapes are known
    companion: tuple | None = None     # (loss op, suffix): spec build adds that loss, named
                                       # LAYER_SUFFIX and reading [LAYER's input, LAYER], for
                                       # each layer of this op (an RBM's contrastive divergence)
    measures: tuple = ()               # losses: ((name, fn(a, xs, p, rng) -> per-sample
                                       # values), ...) that evaluate reports beside the loss
                                       # (an RBM's pseudo_log_likelihood); see metrics.py
    doc: str = ""

    @property
    def attr_names(self):
        return [a.name for a in self.attrs]

    def summary_attrs(self, a: Attrs, written=()) -> str:
        """Key attributes, for pictures: 'filters=6 kernel=5x5'. Those equal to their
        defaults are left out unless named in `written` (what the spec says)."""
        parts = []
        for at in self.attrs:
            v = a.get(at.name)
            if v is None or (not at.required and v == at.default and at.name not in written):
                continue
            if isinstance(v, tuple):
                v = "x".join(map(str, v)) if len(set(v)) > 1 or at.name in ("shape",) else v[0]
            parts.append(f"{at.name}={v}")
        return " ".join(parts)


@dataclass
class RunContext:
    """What a reference rule may use besides its inputs (see the module docstring)."""
    training: bool = True
    rng: Any = None
    saved: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.rng is None:
            import numpy as np
            self.rng = np.random.default_rng(0)


def same_shape(a, shapes):
    return shapes[0]


def elementwise_flops(a, shapes, out):
    return math.prod(out)
