"""Parameter initializers, by name, as a one-key mapping, or as a literal number or array.

    weight_init: he_normal
    weight_init: {uniform: {low: -0.1, high: 0.1}}
    weight_init: [[0.15, 0.25], [0.20, 0.30]]
"""
from __future__ import annotations

import math

import numpy as np

from .ops.base import AttrError


def _glorot_limit(fan_in, fan_out):
    return math.sqrt(6.0 / (fan_in + fan_out))


NAMED = {
    "zeros": lambda rng, shape, fi, fo: np.zeros(shape),
    "ones": lambda rng, shape, fi, fo: np.ones(shape),
    "glorot_uniform": lambda rng, shape, fi, fo: rng.uniform(
        -_glorot_limit(fi, fo), _glorot_limit(fi, fo), shape),
    "glorot_normal": lambda rng, shape, fi, fo: rng.normal(0, math.sqrt(2.0 / (fi + fo)), shape),
    "he_uniform": lambda rng, shape, fi, fo: rng.uniform(
        -math.sqrt(6.0 / fi), math.sqrt(6.0 / fi), shape),
    "he_normal": lambda rng, shape, fi, fo: rng.normal(0, math.sqrt(2.0 / fi), shape),
    "lecun_uniform": lambda rng, shape, fi, fo: rng.uniform(
        -math.sqrt(3.0 / fi), math.sqrt(3.0 / fi), shape),
    "lecun_normal": lambda rng, shape, fi, fo: rng.normal(0, math.sqrt(1.0 / fi), shape),
    "orthogonal": lambda rng, shape, fi, fo: _orthogonal(rng, shape),
}
NAMED["xavier_uniform"] = NAMED["glorot_uniform"]
NAMED["xavier_normal"] = NAMED["glorot_normal"]

PARAMETRISED = {             # name -> {argument: default}
    "constant": {"value": 0.0},
    "uniform": {"low": -0.05, "high": 0.05},
    "normal": {"mean": 0.0, "std": 0.05},
}


def _orthogonal(rng, shape):
    rows = shape[0]
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    q = q if rows >= cols else q.T
    return q[:rows, :cols].reshape(shape)


def validate(v):
    """Check an initializer written in a spec; returns it normalised. Raises AttrError."""
    from .errors import did_you_mean
    if isinstance(v, bool):
        raise AttrError(f"expected an initializer, got {str(v).lower()}")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        if v in NAMED or v in PARAMETRISED:
            return {v: dict(PARAMETRISED[v])} if v in PARAMETRISED else v
        raise AttrError(f"unknown initializer '{v}'"
                        f"{did_you_mean(v, list(NAMED) + list(PARAMETRISED))}", "E013")
    if isinstance(v, dict):
        if len(v) != 1:
            raise AttrError("an initializer mapping has exactly one key, such as "
                            "{uniform: {low: -0.1, high: 0.1}}")
        (name, args), = v.items()
        if name not in PARAMETRISED:
            raise AttrError(f"unknown initializer '{name}'{did_you_mean(name, PARAMETRISED)}",
                            "E013")
        if isinstance(args, (int, float)) and not isinstance(args, bool) and name == "constant":
            args = {"value": args}
        if not isinstance(args, dict):
            raise AttrError(f"'{name}' takes a mapping of "
                            f"{', '.join(PARAMETRISED[name])}")
        for k, x in args.items():
            if k not in PARAMETRISED[name]:
                raise AttrError(f"'{name}' has no argument '{k}'"
                                f"{did_you_mean(k, PARAMETRISED[name])}", "E011")
            if not isinstance(x, (int, float)) or isinstance(x, bool):
                raise AttrError(f"'{name}.{k}' must be a number")
        out = {**PARAMETRISED[name], **args}
        if name == "uniform" and out["low"] > out["high"]:
            raise AttrError(f"uniform low ({out['low']}) must not exceed high ({out['high']})",
                            "E013")
        if name == "normal" and out["std"] < 0:
            raise AttrError(f"normal std must be >= 0, got {out['std']}", "E013")
        return {name: out}
    if isinstance(v, list):
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (ValueError, TypeError):
            raise AttrError("a literal initializer must be a rectangular array of numbers") from None
        return arr
    raise AttrError(f"expected an initializer name, mapping, number or array, got {v!r}")


def fits(init, shape) -> str | None:
    """None when `init` can fill `shape`, else the reason (literal arrays must match)."""
    if isinstance(init, np.ndarray) and init.shape != tuple(shape):
        return (f"literal initializer has shape {list(init.shape)} but the parameter has "
                f"shape {list(shape)}")
    return None


def initialize(init, shape, rng: np.random.Generator, fan_in: int, fan_out: int,
               dtype=np.float32) -> np.ndarray:
    shape = tuple(shape)
    if isinstance(init, float):
        out = np.full(shape, init)
    elif isinstance(init, np.ndarray):
        out = init.reshape(shape)
    elif isinstance(init, str):
        out = NAMED[init](rng, shape, max(fan_in, 1), max(fan_out, 1))
    else:
        (name, args), = init.items()
        if name == "constant":
            out = np.full(shape, args["value"])
        elif name == "uniform":
            out = rng.uniform(args["low"], args["high"], shape)
        else:
            out = rng.normal(args["mean"], args["std"], shape)
    return np.ascontiguousarray(out, dtype=dtype)
