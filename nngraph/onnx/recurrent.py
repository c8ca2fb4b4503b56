"""ONNX forms of nngraph's recurrent layers: ONNX's RNN, GRU and LSTM, one direction.

nngraph and ONNX hold the same weights in different layouts (nngraph/ops/_recurrent.py):

    nngraph                                   ONNX
    W (F, G*H), x_t W                         W [1, G*H, F], x_t W^T
    U (H, G*H), h U                           R [1, G*H, H]
    b (G*H,) [+ bu (G*H,) for the GRU]        B [1, 2*G*H] = [input biases, recurrent biases]

and the gates in another order, so the gate blocks of every matrix and bias are permuted:

    lstm   nngraph i, f, g, o      ONNX i, o, f, c      (c is nngraph's g, the cell input)
    gru    nngraph r, z, n         ONNX z, r, h         linear_before_reset=1: nngraph's GRU
                                                        applies r after U (PyTorch's form)
    rnn    one gate (tanh)

The LSTM's b goes into ONNX's input biases with zero recurrent biases (only the sum counts);
the GRU's b and bu stay apart, as r multiplies bu_n but not b_n. Initializers keep nngraph's
parameter names ('lstm.W', 'lstm.U', 'lstm.b') and hold them in ONNX's layout.

ONNX's recurrent ops read time-major sequences [T, N, F]: nngraph's (N, T, F) is transposed
in, and the output taken back from Y [T, 1, N, H] (return_sequences) or Y_h [1, N, H].
ONNX Runtime does not run these ops with layout=1 (batch first), hence the transposes.
"""
from __future__ import annotations

import numpy as np

from .registry import Layer, converts

GATES = {"rnn": ("RNN", [0]), "gru": ("GRU", [1, 0, 2]), "lstm": ("LSTM", [0, 3, 1, 2])}
"""op -> (ONNX op, for each ONNX gate in ONNX's order the index of nngraph's gate)."""


def _gate_columns(order, units):
    """Indices of the G*H columns of an nngraph matrix, in ONNX's gate order."""
    return np.concatenate([np.arange(g * units, (g + 1) * units) for g in order])


def _weights(b, L: Layer, order):
    """W, R and, where the layer has biases, B, as initializers in ONNX's layout."""
    cols = _gate_columns(order, L.attrs.units)
    p = L.params
    names = [b.init(f"{L.name}.W", p["W"][:, cols].T[None]),
             b.init(f"{L.name}.U", p["U"][:, cols].T[None])]
    if "b" in p:
        recurrent = p["bu"][cols] if "bu" in p else np.zeros_like(p["b"])
        names.append(b.init(f"{L.name}.b", np.concatenate([p["b"][cols], recurrent])[None]))
    return names


@converts("rnn", "gru", "lstm")
def recurrent(b, L: Layer):
    onnx_op, order = GATES[L.op]
    seq = [1, 0, 2]                                   # (N, T, .) <-> (T, N, .)
    b.node("Transpose", L.inputs, f"{L.name}:time_major", f"{L.name}:time_major", perm=seq)
    extra = {"linear_before_reset": 1} if L.op == "gru" else {}
    sequences = bool(L.attrs.return_sequences)
    outputs = [f"{L.name}:Y", ""] if sequences else ["", f"{L.name}:Y_h"]
    b.node(onnx_op, [f"{L.name}:time_major"] + _weights(b, L, order), outputs, L.name,
           hidden_size=int(L.attrs.units), **extra)
    if sequences:            # Y [T, 1, N, H] -> [T, N, H] -> (N, T, H)
        axes = b.ints(f"{L.name}:direction_axis", [1])
        b.node("Squeeze", [f"{L.name}:Y", axes], f"{L.name}:steps", f"{L.name}:squeeze")
        b.node("Transpose", [f"{L.name}:steps"], L.out, f"{L.name}:batch_major", perm=seq)
    else:                    # Y_h [1, N, H] -> (N, H)
        axes = b.ints(f"{L.name}:direction_axis", [0])
        b.node("Squeeze", [f"{L.name}:Y_h", axes], L.out, f"{L.name}:squeeze")
