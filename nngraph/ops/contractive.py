"""Contractive penalty (Rifai et al., 2011): the squared Frobenius norm of the Jacobian of an
encoder's code with respect to its input, per sample,

    ||J(x)||_F^2 = sum_ij (d code_j / d x_i)^2,

then mean (or sum) over the batch as the other losses. A code that barely moves when the
input moves is robust to small perturbations: the autoencoder keeps only the directions of
the data it needs to reconstruct. For one sigmoid layer h = s(x W + b) this is the classic
sum_j (h_j (1 - h_j))^2 sum_i W_ij^2.

`in: [code, input]`. The encoder between them is found when the spec is built (`borrows`):
dense layers (on flat inputs), elementwise activations (their own layers or a dense layer's
`activation:`), flatten and reshape. The penalty reads those layers' parameters and sends them
its gradient, which is exact: through W in J itself and through the activations' slopes
f'(a), whose derivative f''(a) reaches W, b and the input. Anything else between input and
code is a located error naming the layer: convolutions and pools (not handled here), noise
(a Jacobian drawn anew each step; name the noisy layer as the input instead: a denoising
contractive autoencoder), batchnorm (mixes the samples), `step` (its backward is
straight-through, not its derivative). Piecewise linear activations (relu, leaky_relu, ramp)
are allowed: their Jacobian is exact and f'' = 0 between kinks, as in PyTorch.

Cost: the rule recomputes the encoder from the input (cheaper than keeping its values) and
carries every sample's Jacobian: batch x units x inputs numbers per dense layer, and
units x fan_in x inputs multiply-adds per sample for each dense layer after the first (the
first one's Jacobian is its Wᵀ), about twice that again backward. Fine at autoencoder sizes
(a 784-input, 1000-unit code at batch 64 holds 50 M numbers per layer); the code's own value
is not read (the input `code` names the layer).
"""
import math

import networkx as nx
import numpy as np

from ._second_derivatives import VALUE_AND_DERIVATIVES
from .base import Fusion, OpDef, ShapeError

PASS_THROUGH = ("flatten", "reshape")
"""Ops that relabel a sample's numbers without changing them: the Jacobian passes unchanged."""


def shape(a, shapes):
    code, _ = (tuple(s) for s in shapes)
    if len(code) != 1:
        raise ShapeError(f"contractive's code must be a vector of units, got shape "
                         f"{list(code)}: name the dense layer (or its activation layer) "
                         f"that makes the code")
    return ()


# ------------------------------------------------------------------ finding the encoder

def borrows(graph, name):
    """Walk from the code back to the input: ({'W0': 'enc1.W', ...}, {'_chain': steps}).

    A step is ('dense', W name, b name or None, fan_in, units) or ('act', activation name,
    ((attr, value), ...), units), listed from the input to the code."""
    code, source = graph.nodes[name]["inputs"]
    if code == source or not nx.has_path(graph, source, code):
        raise ShapeError(f"'{code}' is not computed from '{source}': contractive "
                         f"differentiates a code with respect to an input of its encoder "
                         f"(in: [code, input])")
    steps, node = [], code
    while node != source:
        d = graph.nodes[node]
        steps[:0] = _steps_of(graph, node, d)
        node = d["inputs"][0]
    dense = [s for s in steps if s[0] == "dense"]
    if not dense:
        raise ShapeError(f"no dense layer between '{source}' and '{code}': the penalty has no "
                         f"parameter to act on")
    params, chain = {}, []
    for s in steps:                    # dense layers get local names W0, b0, W1, ...
        if s[0] == "dense":
            k = sum(c[0] == "dense" for c in chain)
            w_key, b_key, fan_in, units = s[1:]
            params[f"W{k}"] = w_key
            if b_key:
                params[f"b{k}"] = b_key
            s = ("dense", f"W{k}", f"b{k}" if b_key else None, fan_in, units)
        chain.append(s)
    return params, {"_chain": tuple(chain)}


def _steps_of(graph, node, d):
    """The chain steps of one layer, or a ShapeError naming it and why it cannot be one."""
    op = d["op"]
    if d["kind"] == "input":
        raise ShapeError(f"the code is computed from input '{node}', not from the input "
                         f"named in `in:`")
    what = f"layer '{node}' ({op.name})"
    if len(d["inputs"]) != 1:
        raise ShapeError(f"{what} between the input and the code reads {len(d['inputs'])} "
                         f"values; contractive supports a chain of dense layers, elementwise "
                         f"activations, flatten and reshape")
    if op.name == "dense":
        fan_in = graph.nodes[d["inputs"][0]]["shape"]
        if len(fan_in) != 1:
            raise ShapeError(f"{what} transforms each step of a sequence {list(fan_in)}; "
                             f"contractive needs a flat input to each dense layer (add "
                             f"{{op: flatten}} before it)")
        # a layer with `shares: OTHER` uses OTHER's parameters (spec/borrow.py)
        keys = {**{p: f"{node}.{p}" for p in d["params"]}, **d.get("borrowed", {})}
        dense = ("dense", keys["W"], keys.get("b"), fan_in[0], d["shape"][0])
        act = d["activation"]
        return [dense] + ([_activation_step(node, *act, d["shape"])] if act else [])
    if op.kind == "activation":
        at = {k: d["attrs"][k] for k in op.attr_names}
        return [_activation_step(node, op.name, at, d["shape"])]
    if op.kind == "reshape" and op.name in PASS_THROUGH:
        return []
    raise ShapeError(f"{what} cannot be differentiated twice here: {_why_not(op)}")


def _activation_step(node, act, attrs, shape):
    if act not in VALUE_AND_DERIVATIVES:
        why = ("its backward is straight-through (identity), not its derivative, which is 0 "
               "almost everywhere" if act == "step" else
               "it is not elementwise" if act in ("softmax", "log_softmax") else
               "it has no second derivative rule")
        raise ShapeError(f"layer '{node}': activation {act} cannot be differentiated twice "
                         f"for the contractive penalty: {why}; supported: "
                         f"{', '.join(sorted(VALUE_AND_DERIVATIVES))}")
    return ("act", act, tuple(sorted(attrs.items())), math.prod(shape))


def _why_not(op) -> str:
    if op.kind == "noise":
        return ("its output is random, so the Jacobian changes at every step; name the noisy "
                "layer as contractive's input instead (in: [code, NOISY])")
    if op.name == "batchnorm":
        return "it mixes the samples of a batch, so no sample has a Jacobian of its own"
    return ("contractive supports dense layers, elementwise activations, flatten and reshape "
            "(a convolutional or pooling encoder is not handled)")


# ------------------------------------------------------------------ the penalty

def _run(chain, x, p):
    """The encoder from x, keeping per step (step, z before it, J before it, f', f'').

    J is the Jacobian of the current values with respect to x: None for the identity, 2-D
    (batch, n) for a diagonal one (activations before the first dense layer), else 3-D
    (batch, units, inputs)."""
    tape, z, J = [], x, None
    for step in chain:
        if step[0] == "dense":
            W, b = p[step[1]], p.get(step[2])
            tape.append((step, z, J, None, None))
            if J is None:
                J = np.broadcast_to(W.T, (len(x),) + W.T.shape)
            elif J.ndim == 2:
                J = W.T[None, :, :] * J[:, None, :]
            else:
                J = np.matmul(W.T, J)
            z = z @ W + b if b is not None else z @ W
        else:
            y, d1, d2 = VALUE_AND_DERIVATIVES[step[1]](z, dict(step[2]))
            tape.append((step, z, J, d1, d2))
            J = d1 if J is None else d1 * J if J.ndim == 2 else d1[:, :, None] * J
            z = y
    return tape, J


def _per_sample(J):
    return (J * J).reshape(len(J), -1).sum(axis=1)


def forward(ctx, a, xs, p):
    x = xs[1].reshape(len(xs[1]), -1)
    _, J = _run(a["_chain"], x, p)
    per_sample = _per_sample(J)
    return per_sample.mean() if a.reduction == "mean" else per_sample.sum()


def backward(ctx, a, xs, p, y, gy):
    x = xs[1].reshape(len(xs[1]), -1)
    tape, J = _run(a["_chain"], x, p)
    G = J * J.dtype.type(2 * (gy / len(x) if a.reduction == "mean" else gy))
    gz, gp = None, {}                 # gz: gradient of the values z (None: zero)
    for step, z, J_in, d1, d2 in reversed(tape):
        if step[0] == "dense":
            G, gz = _dense_back(step, p, z, J_in, G, gz, gp)
        else:
            G, gz = _activation_back(J_in, G, gz, d1, d2)
    gx = np.zeros_like(xs[1]) if gz is None else gz.reshape(xs[1].shape).astype(xs[1].dtype)
    return [None, gx], gp


def _dense_back(step, p, z, J_in, G, gz, gp):
    """Through J = W^T J_in and z_out = z W + b."""
    _, wname, bname, _, _ = step
    W = p[wname]
    if J_in is None:
        gW, G_in = G.sum(axis=0).T, None
    elif J_in.ndim == 2:
        gW = np.einsum("bui,bi->iu", G, J_in)
        G_in = np.einsum("bui,iu->bi", G, W)
    else:
        gW = np.einsum("bpi,bui->pu", J_in, G)
        G_in = np.matmul(W, G)
    if gz is not None:
        gW = gW + z.T @ gz
    gp[wname] = gW
    if bname is not None:
        gp[bname] = gz.sum(axis=0) if gz is not None else np.zeros_like(p[bname])
    return G_in, (gz @ W.T if gz is not None else None)


def _activation_back(J_in, G, gz, d1, d2):
    """Through J = diag(f'(z)) J_in and z_out = f(z): f'' carries the slope's gradient."""
    if J_in is None:
        g_slope, G_in = G, None
    elif J_in.ndim == 2:
        g_slope, G_in = G * J_in, G * d1
    else:
        g_slope, G_in = (G * J_in).sum(axis=2), G * d1[:, :, None]
    g_z = g_slope * d2 if gz is None else g_slope * d2 + gz * d1
    return G_in, g_z


def flops(a, shapes, out):
    """Forward, per sample: the encoder's values, the Jacobian's products (the first dense
    layer's is Wᵀ itself; later ones multiply a units x inputs matrix) and the norm."""
    inputs, total, jacobian = math.prod(shapes[1]), 0, None    # None, 'diagonal', 'full'
    for step in a.get("_chain", ()):
        if step[0] == "dense":
            total += 2 * step[3] * step[4] * (1 + (inputs if jacobian == "full" else 0))
            total += step[4] * inputs if jacobian == "diagonal" else 0
            jacobian, width = "full", step[4]
        else:
            total += 4 * step[3] + step[3] * (inputs if jacobian == "full" else 1)
            jacobian, width = jacobian or "diagonal", step[3]
    return total + (2 * width * (inputs if jacobian == "full" else 1) if jacobian else 0)


OP = OpDef("contractive", "loss", Fusion.OPAQUE, shape, inputs=(2, 2), flops=flops,
           forward=forward, backward=backward, differentiable_inputs=(1,), borrows=borrows,
           doc="||d code / d input||_F^2 per sample, the contractive autoencoder's penalty "
               "(in: [code, input]; the encoder between them: dense layers, elementwise "
               "activations, flatten, reshape)")
