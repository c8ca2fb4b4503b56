"""ONNX forms of nngraph's layers other than activations and recurrent ones.

Each converter writes the ONNX nodes that compute exactly what the op's reference forward
rule does in evaluation (nngraph/ops/<op>.py). Geometry (padding, output sizes) comes from
the ops' own helpers, so 'same' padding, asymmetric pads and output_padding mean here what
they mean there. The node that computes a layer is named after it; helper nodes and their
tensors are '<layer>:<what>'. Shapes carry a leading batch dimension, which every node keeps
symbolic (a Reshape copies it with 0).
"""
from __future__ import annotations

import numpy as np

from ..ops import _pool
from ..ops import conv1d as _conv1d
from ..ops import conv2d as _conv2d
from ..ops import conv2d_transpose as _conv2d_t
from .registry import Layer, converts


@converts("dense")
def dense(b, L: Layer):
    """Gemm for (features,) inputs; MatMul (+ Add) on the last axis for (steps, features)."""
    x, w = L.inputs[0], L.param(b, "W")
    bias = [L.param(b, "b")] if "b" in L.params else []
    if len(L.in_shapes[0]) == 1:
        b.node("Gemm", [x, w] + bias, L.out, L.name)
    elif bias:
        b.node("MatMul", [x, w], f"{L.name}:matmul", L.name)
        b.node("Add", [f"{L.name}:matmul"] + bias, L.out, f"{L.name}:bias")
    else:
        b.node("MatMul", [x, w], L.out, L.name)


def _conv(b, L: Layer, pads_lo, pads_hi, dilations):
    """Conv with nngraph's W (filters, in_channels / groups, *kernel), which is ONNX's
    layout. `group` is written only when grouped (ONNX's default is 1), so that ungrouped
    convolutions export exactly as before."""
    ins = [L.inputs[0], L.param(b, "W")] + ([L.param(b, "b")] if "b" in L.params else [])
    grouped = {"group": L.attrs.groups} if L.attrs.get("groups", 1) > 1 else {}
    b.node("Conv", ins, L.out, L.name, kernel_shape=list(L.attrs.kernel),
           strides=list(L.attrs.stride), dilations=list(dilations),
           pads=list(pads_lo) + list(pads_hi), **grouped)


@converts("conv2d")
def conv2d(b, L: Layer):
    _, _, _, ((pt, pb), (pl, pr)) = _conv2d._geometry(L.attrs, L.in_shapes[0])
    _conv(b, L, (pt, pl), (pb, pr), L.attrs.dilation)


@converts("conv1d")
def conv1d(b, L: Layer):
    _, (_, (pl, pr)) = _conv1d._geometry(L.attrs, L.in_shapes[0])
    _conv(b, L, (pl,), (pr,), L.attrs.dilation)


@converts("conv2d_transpose")
def conv2d_transpose(b, L: Layer):
    """ConvTranspose (W (in_channels, filters, kh, kw) is ONNX's layout too). nngraph crops
    the full scatter by (lo, hi) per axis, a negative hi extending it with zeros instead:
    ONNX's pads crop, and its output_padding extends."""
    a, (_, h, w) = L.attrs, L.in_shapes[0]
    (_, top, bottom), (_, left, right) = _conv2d_t._axis(a, h, 0), _conv2d_t._axis(a, w, 1)
    ins = [L.inputs[0], L.param(b, "W")] + ([L.param(b, "b")] if "b" in L.params else [])
    b.node("ConvTranspose", ins, L.out, L.name, kernel_shape=list(a.kernel),
           strides=list(a.stride), pads=[top, left, max(bottom, 0), max(right, 0)],
           output_padding=[max(-bottom, 0), max(-right, 0)])


@converts("maxpool2d", "maxpool1d", "avgpool2d")
def pool(b, L: Layer):
    """MaxPool ignores its padding as nngraph's -inf cells do; AveragePool counts it as
    zeros in a full-window divisor with count_include_pad=1, as nngraph's average does, or
    divides by the window's input cells (count_include_pad=0) where the layer says so."""
    rank = len(L.in_shapes[0]) - 1
    w = _pool.window(L.op, L.attrs, L.in_shapes[0])      # lifted to 2-D: keep the last axes
    size, stride, pads = w.size[-rank:], w.stride[-rank:], w.pads[-rank:]
    extra = {"count_include_pad": int(L.attrs.get("count_include_pad", True))} \
        if L.op == "avgpool2d" else {}
    b.node("AveragePool" if L.op == "avgpool2d" else "MaxPool", L.inputs, L.out, L.name,
           kernel_shape=list(size), strides=list(stride),
           pads=[lo for lo, _ in pads] + [hi for _, hi in pads], **extra)


@converts("global_avgpool2d")
def global_avgpool2d(b, L: Layer):
    b.node("GlobalAveragePool", L.inputs, f"{L.name}:pooled", L.name)        # N, C, 1, 1
    b.node("Flatten", [f"{L.name}:pooled"], L.out, f"{L.name}:flatten", axis=1)


@converts("upsample2d")
def upsample2d(b, L: Layer):
    """Nearest neighbour at integer scales: output cell i reads input floor(i / s)."""
    sh, sw = L.attrs.size
    scales = b.init(f"{L.name}:scales", np.array([1, 1, sh, sw], dtype=np.float32))
    b.node("Resize", [L.inputs[0], "", scales], L.out, L.name, mode="nearest",
           coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@converts("flatten")
def flatten(b, L: Layer):
    b.node("Flatten", L.inputs, L.out, L.name, axis=1)


@converts("reshape")
def reshape(b, L: Layer):
    """The shape nngraph resolved (no -1 left), after a 0 that copies the batch size."""
    shape = b.ints(f"{L.name}:shape", [0] + list(L.shape))
    b.node("Reshape", [L.inputs[0], shape], L.out, L.name)


@converts("concat")
def concat(b, L: Layer):
    axis = L.attrs.axis % len(L.in_shapes[0]) + 1                   # after the batch
    b.node("Concat", L.inputs, L.out, L.name, axis=axis)


@converts("add")
def add(b, L: Layer):
    b.node("Add" if len(L.inputs) == 2 else "Sum", L.inputs, L.out, L.name)


@converts("multiply")
def multiply(b, L: Layer):
    """A chain of Mul (ONNX's Mul takes two inputs), left to right as nngraph multiplies."""
    acc = L.inputs[0]
    for k, x in enumerate(L.inputs[1:], start=1):
        last = k == len(L.inputs) - 1
        out = L.out if last else f"{L.name}:product{k}"
        acc = b.node("Mul", [acc, x], out, L.name if last else f"{L.name}:mul{k}")


@converts("batchnorm")
def batchnorm(b, L: Layer):
    """Inference form: the running statistics, a fixed per-channel affine map."""
    gamma = L.param(b, "gamma")
    beta = L.param(b, "beta") if "beta" in L.params else \
        b.init(f"{L.name}:zero_beta", np.zeros_like(L.params["gamma"]))
    mean = b.init(f"{L.name}.running_mean", L.state["running_mean"])
    var = b.init(f"{L.name}.running_var", L.state["running_var"])
    b.node("BatchNormalization", [L.inputs[0], gamma, beta, mean, var], L.out, L.name,
           epsilon=float(L.attrs.eps))


@converts("embedding")
def embedding(b, L: Layer):
    """Row x of W for every index x. nngraph refuses indices outside [0, vocab); ONNX's
    Gather counts negative ones from the end."""
    b.node("Gather", [L.param(b, "W"), L.inputs[0]], L.out, L.name, axis=0)


@converts("dropout", "gaussian_noise", "stop_gradient")
def identity_at_inference(b, L: Layer):
    """Dropout and noise act in training only, stop_gradient on gradients only: an
    Identity keeps the layer's name."""
    b.node("Identity", L.inputs, L.out, L.name)


@converts("lrn")
def lrn(b, L: Layer):
    """ONNX's LRN is nngraph's definition (alpha divided by size, zero channels beyond the
    edges). ONNX Runtime runs it on (N, C, H, W) only, so any other per-sample rank goes
    through (N, C, rest, 1) and back: the window runs over channels alone either way."""
    a = dict(alpha=float(L.attrs.alpha), beta=float(L.attrs.beta), bias=float(L.attrs.bias),
             size=int(L.attrs.size))
    shape = list(L.in_shapes[0])
    if len(shape) == 3:
        b.node("LRN", L.inputs, L.out, L.name, **a)
        return
    flat = [0, shape[0], int(np.prod(shape[1:])), 1]
    b.node("Reshape", [L.inputs[0], b.ints(f"{L.name}:shape4", flat)],
           f"{L.name}:x4", f"{L.name}:reshape4")
    b.node("LRN", [f"{L.name}:x4"], f"{L.name}:y4", L.name, **a)
    b.node("Reshape", [f"{L.name}:y4", b.ints(f"{L.name}:shape", [0] + shape)], L.out,
           f"{L.name}:reshape")


@converts("prelu")
def prelu(b, L: Layer):
    """PRelu with the slope shaped [C, 1, ...] so that it broadcasts over (N, C, ...) per
    channel (ONNX broadcasts from the last axis)."""
    a = np.asarray(L.params["a"])
    slope = b.init(f"{L.name}.a", a.reshape((-1,) + (1,) * (len(L.in_shapes[0]) - 1)))
    b.node("PRelu", [L.inputs[0], slope], L.out, L.name)


@converts("global_maxpool2d")
def global_maxpool2d(b, L: Layer):
    """GlobalMaxPool gives (N, C, 1, 1); the Flatten makes it nngraph's (N, C)."""
    b.node("GlobalMaxPool", L.inputs, f"{L.name}:pooled", L.name)
    b.node("Flatten", [f"{L.name}:pooled"], L.out, f"{L.name}:flatten", axis=1)


@converts("scale")
def scale(b, L: Layer):
    """Mul (+ Add) with W and b shaped [C, 1, ...] so that they broadcast over (N, C, ...)
    per channel (ONNX broadcasts from the last axis); the import folds them back."""
    view = (-1,) + (1,) * (len(L.in_shapes[0]) - 1)
    w = b.init(f"{L.name}.W", np.asarray(L.params["W"]).reshape(view))
    if "b" not in L.params:
        b.node("Mul", [L.inputs[0], w], L.out, L.name)
        return
    bias = b.init(f"{L.name}.b", np.asarray(L.params["b"]).reshape(view))
    b.node("Mul", [L.inputs[0], w], f"{L.name}:scaled", L.name)
    b.node("Add", [f"{L.name}:scaled", bias], L.out, f"{L.name}:bias")


@converts("channel_shuffle")
def channel_shuffle(b, L: Layer):
    """Reshape (N, g, C/g, ...), Transpose the two group axes, Reshape back: ShuffleNet's
    own ONNX form, which the import reads back as one channel_shuffle (import_spatial.py)."""
    shape = [int(s) for s in L.in_shapes[0]]
    g = int(L.attrs.groups)
    split = [0, g, shape[0] // g] + shape[1:]
    b.node("Reshape", [L.inputs[0], b.ints(f"{L.name}:split", split)], f"{L.name}:groups",
           f"{L.name}:reshape_split")
    perm = [0, 2, 1] + list(range(3, len(split)))
    b.node("Transpose", [f"{L.name}:groups"], f"{L.name}:swapped", L.name, perm=perm)
    b.node("Reshape", [f"{L.name}:swapped", b.ints(f"{L.name}:shape", [0] + shape)], L.out,
           f"{L.name}:reshape")


@converts("pad2d")
def pad2d(b, L: Layer):
    """Pad on H and W: pads [0, 0, top, left, 0, 0, bottom, right] (negative ones crop) and
    the constant as its third input; nngraph's edge and reflect are ONNX's modes."""
    t, bottom, left, r = (int(p) for p in L.attrs.padding)
    ins = [L.inputs[0], b.ints(f"{L.name}:pads", [0, 0, t, left, 0, 0, bottom, r])]
    if L.attrs.mode == "constant":
        ins.append(b.scalar(f"{L.name}:value", float(L.attrs.value)))
    b.node("Pad", ins, L.out, L.name, mode=L.attrs.mode)


@converts("rbm")
def rbm(b, L: Layer):
    """The hidden probabilities sigmoid(x W + b), as a dense sigmoid layer computes them. The
    visible bias, which inference does not use, goes along as an initializer so that the file
    holds the whole RBM (init_from a .onnx gets it too). Named as a dense layer with a
    sigmoid activation is, so that importing the file gives a dense sigmoid layer `L`."""
    b.node("Gemm", [L.inputs[0], L.param(b, "W"), L.param(b, "b")], f"{L.name}:preact",
           L.name)
    L.param(b, "vb")
    b.node("Sigmoid", [f"{L.name}:preact"], L.out, f"{L.name}:sigmoid")
