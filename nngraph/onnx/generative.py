"""ONNX forms of the generative families' layers: `reparameterize` and `fill`."""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from .registry import Layer, converts


@converts("reparameterize")
def reparameterize(b, L: Layer):
    """z = mean + exp(log_var / 2) * eps with eps from RandomNormalLike: a sample as predict
    draws one (from ONNX Runtime's generator, not nngraph's stream); the mean alone when
    the layer is deterministic."""
    mean, log_var = L.inputs
    if L.attrs.get("deterministic"):
        b.node("Identity", [mean], L.out, L.name)
        return
    half = b.node("Mul", [log_var, b.scalar(f"{L.name}:half", 0.5)], f"{L.name}:half_lv",
                  f"{L.name}:half_lv")
    std = b.node("Exp", [half], f"{L.name}:std", f"{L.name}:std")
    eps = b.node("RandomNormalLike", [mean], f"{L.name}:eps", f"{L.name}:eps",
                 dtype=b.elem_type)
    noise = b.node("Mul", [std, eps], f"{L.name}:noise", f"{L.name}:noise")
    b.node("Add", [mean, noise], L.out, L.name)


@converts("fill")
def fill(b, L: Layer):
    """ConstantOfShape of the input's shape (batch included) holding `value`."""
    shape = b.node("Shape", [L.inputs[0]], f"{L.name}:shape", f"{L.name}:shape")
    value = numpy_helper.from_array(np.asarray([L.attrs.value], dtype=b.dtype))
    b.node("ConstantOfShape", [shape], L.out, L.name, value=value)
