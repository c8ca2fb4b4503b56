"""ONNX RNN, GRU and LSTM -> nngraph's rnn, gru and lstm: the inverse of recurrent.py.

ONNX's recurrent ops read time-major sequences [T, N, F] and write Y [T, 1, N, H] and
Y_h [1, N, H]; nngraph's are batch-first, (N, T, F) in and (N, T, H) or (N, H) out. So the
tensors around a recurrent node are tracked as views of nngraph values (Value.view):

    'tm'   the time-major form of a batch-first value: Transpose(perm=[1, 0, 2]) of it
    'y'    Y of a layer with return_sequences (Squeeze axis 1 makes it 'tm')
    'yh'   Y_h of a layer without (Squeeze axis 0 makes it the layer's ordinary value)

and only those moves between them are imported; a view read by any other op is refused.
The weights are transposed back and their gate blocks put back in nngraph's order (GATES
in recurrent.py); the two ONNX bias halves add up into nngraph's b for the LSTM and the RNN,
and stay apart as b and bu for the GRU (linear_before_reset=1, nngraph's form).
"""
from __future__ import annotations

import numpy as np

from .import_core import Importer, Value, imports
from .recurrent import GATES

OPS = {"RNN": "rnn", "GRU": "gru", "LSTM": "lstm"}
DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"],
                       "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def transpose_view(imp: Importer, node, v: Value, perm: list) -> None:
    """Transpose [1, 0, 2]: batch-first <-> time-major; no other transpose has a layer."""
    if perm != [1, 0, 2] or len(v.shape) != 2 or v.onnx_shape is not None or \
            v.view not in ("", "tm"):
        imp.refuse(f"perm={perm}: nngraph has no transpose layer; only a (batch, time) swap "
                   "around a recurrent layer is imported")
    imp.set(node.output[0], Value(v.name, v.shape, view="tm" if v.view == "" else ""))


def squeeze_view(imp: Importer, node, v: Value, axes) -> None:
    """Y's direction axis (1) or Y_h's (0) squeezed away."""
    want = {"y": [1], "yh": [0]}.get(v.view)
    if axes != want:
        imp.refuse(f"a squeeze of axes {axes} of a recurrent layer's output: only its "
                   "direction axis is dropped")
    imp.set(node.output[0], Value(v.name, v.shape, view="tm" if v.view == "y" else ""))


def reshape_view(imp: Importer, node, v: Value, target) -> None:
    imp.refuse("a reshape of a time-major sequence or of a recurrent layer's direction-major "
               "output: nngraph's sequences are batch-first")


def _check(imp: Importer, node, a: dict) -> None:
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction != "forward":
        imp.refuse(f"direction={direction}: nngraph's recurrent layers run forward only")
    acts = [x.decode() if isinstance(x, bytes) else x for x in a.get("activations", [])]
    if acts and acts != DEFAULT_ACTIVATIONS[node.op_type]:
        imp.refuse(f"activations {acts}: nngraph's {OPS[node.op_type]} uses "
                   f"{DEFAULT_ACTIVATIONS[node.op_type]}")
    for key in ("clip", "input_forget"):
        if a.get(key):
            imp.refuse(f"{key}={a[key]}: nngraph's recurrent layers have no {key}")
    if a.get("layout", 0):
        imp.refuse("layout=1: the sequences must be time-major, transposed from batch-first")
    if node.op_type == "GRU" and a.get("linear_before_reset", 0) != 1:
        imp.refuse("linear_before_reset=0: nngraph's GRU applies the reset gate after the "
                   "recurrent product (linear_before_reset=1)")
    extra = list(node.input[4:])
    if any(extra):
        imp.refuse("sequence lengths, an initial state or peepholes: nngraph's recurrent "
                   "layers start from zeros and run every step")
    if len(node.output) > 2 and node.output[2] and imp.uses.get(node.output[2]):
        imp.refuse("its cell-state output Y_c is read: nngraph's lstm returns h only")


def _weights(imp: Importer, node, op: str, units: int) -> dict:
    """nngraph's W, U, b (and bu) from ONNX's W, R, B."""
    w, r = imp.const(node.input[1]), imp.const(node.input[2])
    b = imp.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if w is None or r is None or (len(node.input) > 3 and node.input[3] and b is None):
        imp.refuse("its weights are computed from data")
    order = GATES[op][1]
    rows = np.concatenate([np.arange(order.index(g) * units, (order.index(g) + 1) * units)
                           for g in range(len(order))])
    params = {"W": w[0][rows].T, "U": r[0][rows].T}
    if b is not None:
        gh = len(order) * units
        wb, rb = b[0][:gh][rows], b[0][gh:][rows]
        if op == "gru":
            params.update(b=wb, bu=rb)
        else:
            params["b"] = wb + rb
    return params


@imports("RNN", "GRU", "LSTM")
def recurrent(imp: Importer, node):
    a = imp.attrs()
    _check(imp, node, a)
    op = OPS[node.op_type]
    v = imp.data(node.input[0])
    if v.view != "tm":
        imp.refuse("its sequence is not the (time, batch) transpose of a batch-first one: "
                   "nngraph's sequences are batch-first")
    units = int(a["hidden_size"])
    y_used = bool(node.output[0]) and imp.uses.get(node.output[0], 0) > 0
    h_used = len(node.output) > 1 and bool(node.output[1]) and \
        imp.uses.get(node.output[1], 0) > 0
    if y_used and h_used:
        imp.refuse("both Y and Y_h are read: an nngraph layer returns every step or the last")
    params = _weights(imp, node, op, units)
    steps = v.shape[0]
    shape = (steps, units) if y_used else (units,)
    name = imp.add_layer(op, [v.name], shape, params=params, units=units,
                         return_sequences=True if y_used else None,
                         use_bias=None if "b" in params else False)
    if y_used:
        imp.set(node.output[0], Value(name, shape, view="y"))
    else:
        imp.set(node.output[1], Value(name, shape, view="yh"))
