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


def _uniform(limit):
    return lambda r, n: r.uniform(-limit, limit, n)


def _normal(std):
    return lambda r, n: r.normal(0, std, n)


DRAWS = {         # name -> (fan_in, fan_out) -> draw(rng, count), written a chunk at a time
    "zeros": lambda fi, fo: lambda r, n: 0.0,
    "ones": lambda fi, fo: lambda r, n: 1.0,
    "glorot_uniform": lambda fi, fo: _uniform(_glorot_limit(fi, fo)),
    "glorot_normal": lambda fi, fo: _normal(math.sqrt(2.0 / (fi + fo))),
    "he_uniform": lambda fi, fo: _uniform(math.sqrt(6.0 / fi)),
    "he_normal": lambda fi, fo: _normal(math.sqrt(2.0 / fi)),
    "lecun_uniform": lambda fi, fo: _uniform(math.sqrt(3.0 / fi)),
    "lecun_normal": lambda fi, fo: _normal(math.sqrt(1.0 / fi)),
}
DRAWS["xavier_uniform"] = DRAWS["glorot_uniform"]
DRAWS["xavier_normal"] = DRAWS["glorot_normal"]
NAMED = (*DRAWS, "orthogonal")

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
        return _finite(v)
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
            _finite(x, f"'{name}.{k}' ")
        out = {**PARAMETRISED[name], **args}
        if name == "uniform" and out["low"] > out["high"]:
            raise AttrError(f"uniform low ({out['low']}) must not exceed high ({out['high']})",
                            "E013")
        if name == "uniform" and not math.isfinite(float(out["high"]) - float(out["low"])):
            raise AttrError(f"uniform range from {out['low']} to {out['high']} is too wide "
                            "to draw from", "E013")
        if name == "normal" and out["std"] < 0:
            raise AttrError(f"normal std must be >= 0, got {out['std']}", "E013")
        return {name: out}
    if isinstance(v, list):
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (ValueError, TypeError):
            raise AttrError("a literal initializer must be a rectangular array of numbers") from None
        if not (np.abs(arr) <= FLOAT32_MAX).all():
            raise AttrError("a literal initializer must hold finite numbers no larger than "
                            f"{FLOAT32_MAX:.4g}", "E013")
        return arr
    raise AttrError(f"expected an initializer name, mapping, number or array, got {v!r}")


def _finite(x, what: str = "") -> float:
    try:
        out = float(x)
    except OverflowError:             # an integer too large for a float
        out = math.inf
    if not math.isfinite(out):
        raise AttrError(f"{what}must be a finite number, got {x!r:.40}", "E013")
    if abs(out) > FLOAT32_MAX:        # a parameter must hold it in float32 too
        raise AttrError(f"{what}must be at most {FLOAT32_MAX:.4g} in size, got {x!r:.40}",
                        "E013")
    return out


def fits(init, shape) -> str | None:
    """None when `init` can fill `shape`, else the reason (literal arrays must match)."""
    if isinstance(init, np.ndarray) and init.shape != tuple(shape):
        return (f"literal initializer has shape {list(init.shape)} but the parameter has "
                f"shape {list(shape)}")
    return None


FLOAT32_MAX = float(np.finfo(np.float32).max)
CHUNK = 1 << 20          # values drawn at a time: float64 scratch stays at 8 MiB


def initialize(init, shape, rng: np.random.Generator, fan_in: int, fan_out: int,
               dtype=np.float32) -> np.ndarray:
    """A new array of `shape` in `dtype`. Random values are drawn in float64 a chunk at a
    time and written straight into it, so a large parameter never exists twice in float64;
    the values are the same as one draw of the whole array would give."""
    shape = tuple(shape)
    if isinstance(init, float):
        return np.full(shape, init, dtype=dtype)
    if isinstance(init, np.ndarray):
        return np.ascontiguousarray(init.reshape(shape), dtype=dtype)
    fi, fo = max(fan_in, 1), max(fan_out, 1)
    if isinstance(init, str):
        if init == "orthogonal":                # a QR of the whole matrix: float64 throughout
            return np.ascontiguousarray(_orthogonal(rng, shape), dtype=dtype)
        draw = DRAWS[init](fi, fo)
    else:
        (name, args), = init.items()
        if name == "constant":
            return np.full(shape, args["value"], dtype=dtype)
        draw = ((lambda r, n: r.uniform(args["low"], args["high"], n)) if name == "uniform"
                else (lambda r, n: r.normal(args["mean"], args["std"], n)))
    out = np.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        n = min(CHUNK, flat.size - start)
        flat[start:start + n] = draw(rng, n)
    return out
