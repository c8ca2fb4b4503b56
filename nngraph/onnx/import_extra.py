"""ONNX Selu, Softsign and GlobalMaxPool -> nngraph's selu, softsign and global_maxpool2d.

The activations become layers of their own, as import_shapes.py makes Relu and Elu, and
import_graph.py then fuses each one that alone reads a layer into that layer's `activation:`.
GlobalMaxPool is GlobalAveragePool's twin (import_ops.py): nngraph's op gives (C,) where
ONNX gives (C, 1, 1), which the Flatten or Reshape that usually follows undoes.
"""
from __future__ import annotations

import numpy as np

from ..ops.selu import ALPHA, GAMMA
from .import_core import Importer, Value, imports
from .import_shapes import _activation


@imports("Selu")
def selu(imp: Importer, node):
    """Attributes equal to nngraph's defaults are left out of the spec, as for Elu. ONNX
    stores them as float32, so a default compares to nngraph's constant rounded so."""
    a = imp.attrs()
    alpha, gamma = float(a.get("alpha", ALPHA)), float(a.get("gamma", GAMMA))
    if alpha < 0 or gamma <= 0:
        imp.refuse(f"alpha={alpha}, gamma={gamma}: nngraph's selu takes alpha >= 0 and "
                   "gamma > 0")
    _activation(imp, node, "selu",
                alpha=None if _same32(alpha, ALPHA) else alpha,
                gamma=None if _same32(gamma, GAMMA) else gamma)


def _same32(v: float, default: float) -> bool:
    return v == default or np.float32(v) == np.float32(default)


@imports("Softsign")
def softsign(imp: Importer, node):
    _activation(imp, node, "softsign")


@imports("GlobalMaxPool")
def global_maxpool(imp: Importer, node):
    """(N, C, H, W) -> global_maxpool2d's (C,) per sample, ONNX's (C, 1, 1) where read so."""
    shape = imp.shape(node.input[0])
    if len(shape) != 3:
        imp.refuse("a global pool over a rank other than 2-D: nngraph's is global_maxpool2d")
    x = imp.layer_input(node.input[0])
    name = imp.add_layer("global_maxpool2d", [x], (shape[0],))
    imp.set(node.output[0], Value(name, (shape[0],), onnx_shape=(shape[0], 1, 1)))
    if node.output[0] in {o.name for o in imp.model.graph.output}:
        # a graph output keeps ONNX's (C, 1, 1): add its reshape now, while the importer
        # still has a node to name it after (import_graph's _outputs has none)
        imp.layer_input(node.output[0])
