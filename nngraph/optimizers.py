"""Optimizer updates, regularization penalties and max-norm, as numpy reference rules.

Each optimizer is a row of a table: the state slots it keeps per parameter and its update.
`t` counts updates already made (0 on the first step); with `decay` the learning rate is
lr / (1 + decay * t).

    sgd      v = momentum·v − lr·g;  p += v        (nesterov: p += momentum·v − lr·g)
    rmsprop  s = rho·s + (1 − rho)·g²;  p −= lr·g / (√s + eps)
    adagrad  s += g²;  p −= lr·g / (√s + eps)
    adam     m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;
             p −= lr·m̂ / (√v̂ + eps),  m̂ = m / (1 − β1^(t+1)),  v̂ = v / (1 − β2^(t+1))
"""
from __future__ import annotations

import numpy as np

from .spec.train_schema import OPTIMIZER_DEFAULTS, check_optimizer


def _sgd(p, g, s, lr, c, t):
    if c["momentum"] == 0:
        p -= lr * g
        return
    v = s["v"]
    v *= c["momentum"]
    v -= lr * g
    if c["nesterov"]:
        p += c["momentum"] * v - lr * g
    else:
        p += v


def _rmsprop(p, g, s, lr, c, t):
    a = s["s"]
    a *= c["rho"]
    a += (1 - c["rho"]) * g * g
    p -= lr * g / (np.sqrt(a) + c["eps"])


def _adagrad(p, g, s, lr, c, t):
    a = s["s"]
    a += g * g
    p -= lr * g / (np.sqrt(a) + c["eps"])


def _adam(p, g, s, lr, c, t):
    m, v = s["m"], s["v"]
    b1, b2 = c["beta1"], c["beta2"]
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    m_hat = m / (1 - b1 ** (t + 1))
    v_hat = v / (1 - b2 ** (t + 1))
    p -= lr * m_hat / (np.sqrt(v_hat) + c["eps"])


RULES = {            # type -> (state slots, update)
    "sgd": (("v",), _sgd),
    "rmsprop": (("s",), _rmsprop),
    "adagrad": (("s",), _adagrad),
    "adam": (("m", "v"), _adam),
}


def checked_config(config) -> dict:
    """`config` (an optimizer's settings from outside a spec, such as a model file) checked
    as the spec's `train.optimizer` is (spec/train_schema.check_optimizer), with the
    defaults filled in; a ValueError names the first bad setting:

        optimizer.lr: must be > 0, got -0.5
    """
    if not isinstance(config, dict):
        raise ValueError(f"optimizer must be a mapping with a type, got {_show(config)}")
    checked, problems = check_optimizer(config)
    if problems:
        key, _, message, _ = problems[0]
        raise ValueError(f"optimizer.{key}: {message}"[:200])
    return checked


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "..." + text[-6:]


class Optimizer:
    """`Optimizer({"type": "adam", "lr": 1e-3})`; missing settings take their defaults."""

    def __init__(self, config: dict | None):
        config = dict(config or {"type": "sgd"})
        kind = config.get("type", "sgd")
        self.config = {**OPTIMIZER_DEFAULTS[kind], **config, "type": kind}
        self.slots, self.rule = RULES[kind]
        if kind == "sgd" and self.config["momentum"] == 0:
            self.slots = ()

    def init_state(self, arrays: dict, infos: dict) -> dict:
        """{'c1.W/v': zeros, ...} for every trainable parameter."""
        return {f"{k}/{slot}": np.zeros_like(arrays[k])
                for k, info in infos.items() if info.trainable for slot in self.slots}

    def lr_at(self, t: int) -> float:
        return self.config["lr"] / (1.0 + self.config["decay"] * t)

    def update(self, arrays: dict, grads: dict, state: dict, infos: dict, t: int) -> None:
        """One step on every trainable parameter, in place, then max-norm constraints."""
        lr = self.lr_at(t)
        for k, g in grads.items():
            info = infos[k]
            p = arrays[k]
            slots = {slot: state[f"{k}/{slot}"] for slot in self.slots}
            self.rule(p, g.astype(p.dtype, copy=False), slots, p.dtype.type(lr * info.lr_mult),
                      self.config, t)
            if "max_norm" in info.regularizer:
                apply_max_norm(p, info.regularizer["max_norm"], info.spec.shape)


def penalty(arrays: dict, infos: dict, grads: dict | None = None) -> float:
    """Σ l1·|W| + l2·W² over regularized parameters; adds the gradients into `grads`."""
    total = 0.0
    for k, info in infos.items():
        reg = info.regularizer
        if not info.trainable or not (reg.get("l1") or reg.get("l2")):
            continue
        w = arrays[k]
        l1, l2 = reg.get("l1", 0.0), reg.get("l2", 0.0)
        total += l1 * float(np.abs(w).sum()) + l2 * float((w * w).sum())
        if grads is not None:
            # a parameter the losses do not reach still pays its penalty (an unused layer)
            g = (l1 * np.sign(w) + 2 * l2 * w).astype(w.dtype)
            grads[k] = grads[k] + g if k in grads else g
    return total


def apply_max_norm(w: np.ndarray, limit: float, shape) -> None:
    """Rescale each unit's incoming weight vector to norm <= limit. A unit is a column of a
    dense (inputs, units) matrix and a filter (first axis) of a convolution kernel."""
    if w.ndim <= 1:
        axes = None
    elif w.ndim == 2:
        axes = 0
    else:
        axes = tuple(range(1, w.ndim))
    norms = np.sqrt((w * w).sum(axis=axes, keepdims=axes is not None))
    w *= np.minimum(1.0, limit / np.maximum(norms, 1e-12)).astype(w.dtype)
