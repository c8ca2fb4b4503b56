"""ONNX operators -> nngraph layers: the inverse of layers.py and activations.py.

Each converter reads one ONNX node (after constant folding: weights are arrays), checks that
its attributes mean something nngraph's op computes, and adds the layer, or refuses with the
reason (Importer.refuse). Geometry is compared with nngraph's own arithmetic (ops/_conv.py):
explicit pads become nngraph's symmetric padding, or 'same' where they are exactly what
nngraph's 'same' pads, else the node is refused. Elementwise ops with a constant operand
fold into the dense or convolution layer before them (a bias, a scale), else make a scale
layer; merges of data make add, multiply and concat layers. Reshapes and activations are in
import_shapes.py.
"""
from __future__ import annotations

import numpy as np

from ..ops import _conv
from .import_core import Importer, Value, imports
from .import_spatial import pad_layer, padded_pool

AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def _str(v):
    return v.decode() if isinstance(v, bytes) else v


def padding(imp: Importer, a: dict, spatial, kernel, strides, dilations, asymmetric=False):
    """nngraph's padding for ONNX pads/auto_pad: 'valid', a symmetric list, or 'same'; or,
    for a caller that pads on its own (`asymmetric`, the pools), other pads as (lo, hi)."""
    auto, n = _str(a.get("auto_pad", "NOTSET")), len(kernel)
    same = [_conv.out_size(size, k, s, "same", 0, dilation=d)[1:]
            for size, k, s, d in zip(spatial, kernel, strides, dilations)]
    if auto == "VALID":
        return "valid"
    if auto == "SAME_UPPER":
        return "same"
    if auto == "SAME_LOWER":
        if all(lo == hi for lo, hi in same):
            return "same"
        imp.refuse("auto_pad SAME_LOWER pads more before than after here; nngraph's 'same' "
                   "pads more after")
    if auto not in AUTO_PADS:
        imp.refuse(f"auto_pad {auto} is not an ONNX padding nngraph knows")
    pads = list(a.get("pads", [0] * 2 * n))
    lo, hi = pads[:n], pads[n:]
    if lo == hi:
        return "valid" if not any(lo) else list(lo)
    if [tuple(p) for p in same] == list(zip(lo, hi)):
        return "same"
    if asymmetric:
        return tuple(lo), tuple(hi)
    imp.refuse(f"pads {pads} are asymmetric and not what nngraph's 'same' padding pads; "
               "nngraph pads both sides of an axis alike")


def _spatial_rank(imp, w, ops):
    rank = w.ndim - 2
    if rank not in ops:
        imp.refuse(f"a {rank}-D convolution: nngraph has {' and '.join(ops.values())} only")
    return rank


@imports("Conv")
def conv(imp: Importer, node):
    a = imp.attrs()
    w = imp.const(node.input[1])
    if w is None:
        imp.refuse("its weights are computed from data; nngraph's convolutions hold them")
    rank = _spatial_rank(imp, w, {1: "conv1d", 2: "conv2d"})
    group = int(a.get("group", 1))
    if group != 1 and rank != 2:
        imp.refuse(f"group={group} on a 1-D Conv: nngraph's conv1d is not grouped")
    x = imp.layer_input(node.input[0])
    kernel = list(a.get("kernel_shape", w.shape[2:]))
    strides = list(a.get("strides", [1] * rank))
    dil = list(a.get("dilations", [1] * rank))
    pad = padding(imp, a, imp.shape(node.input[0])[1:], kernel, strides, dil,
                  asymmetric=rank == 2)
    if isinstance(pad, tuple):          # pads nngraph's 'same' does not make: pad2d first
        (top, left), (bottom, right) = pad
        x, _ = pad_layer(imp, x, imp.shape(node.input[0]), (top, bottom, left, right), 0.0,
                         "pad")
        pad = "valid"
    bias = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    params = {"W": w} if bias is None else {"W": w, "b": bias}
    name = imp.add_layer("conv2d" if rank == 2 else "conv1d", [x], imp.shape(node.output[0]),
                         params=params, filters=int(w.shape[0]), kernel=kernel,
                         stride=strides, padding=pad, dilation=dil,
                         use_bias=None if bias is not None else False,
                         groups=group if group != 1 else None)
    imp.set(node.output[0], Value(name, imp.shape(node.output[0])))


def _transpose_padding(imp, a, kernel, strides):
    """(padding, output_padding) of conv2d_transpose for ONNX's pads and output_padding:
    ONNX crops (lo, hi) from the full scatter then extends by output_padding at the end;
    nngraph crops (p, p - output_padding) or, for 'same', (lo, k - s - lo)."""
    pads = list(a.get("pads", [0, 0, 0, 0]))
    extra = list(a.get("output_padding", [0, 0]))
    crops = [(pads[i], pads[i + 2] - extra[i]) for i in range(2)]
    if _str(a.get("auto_pad", "NOTSET")) not in ("NOTSET",):
        imp.refuse(f"auto_pad {_str(a['auto_pad'])} on ConvTranspose; nngraph reads explicit pads")
    same = [(max(k - s, 0) // 2, k - s - max(k - s, 0) // 2) for k, s in zip(kernel, strides)]
    if crops == same and any(pads):
        return "same", [0, 0]
    nn_extra = [lo - hi for lo, hi in crops]
    if all(0 <= e < s for e, s in zip(nn_extra, strides)):
        p = [lo for lo, _ in crops]
        return ("valid" if not any(p) else p), nn_extra
    imp.refuse(f"pads {pads} with output_padding {extra}: nngraph's transposed convolution "
               "crops both sides alike")


@imports("ConvTranspose")
def conv_transpose(imp: Importer, node):
    a = imp.attrs()
    w = imp.const(node.input[1])
    if w is None or w.ndim != 4:
        imp.refuse("only 2-D transposed convolutions with constant weights map to "
                   "conv2d_transpose")
    if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
        imp.refuse("group or dilations other than 1: nngraph's conv2d_transpose has neither")
    if "output_shape" in a:
        imp.refuse("output_shape: nngraph's conv2d_transpose is given pads")
    kernel = list(a.get("kernel_shape", w.shape[2:]))
    strides = list(a.get("strides", [1, 1]))
    pad, extra = _transpose_padding(imp, a, kernel, strides)
    x = imp.layer_input(node.input[0])
    bias = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    params = {"W": w} if bias is None else {"W": w, "b": bias}
    shape = imp.shape(node.output[0])
    name = imp.add_layer("conv2d_transpose", [x], shape, params=params,
                         filters=int(w.shape[1]), kernel=kernel, stride=strides,
                         padding=pad, output_padding=extra,
                         use_bias=None if bias is not None else False)
    imp.set(node.output[0], Value(name, shape))


@imports("BatchNormalization")
def batchnorm(imp: Importer, node):
    a = imp.attrs()
    if a.get("training_mode", 0) or any(node.output[1:]):
        imp.refuse("training mode: nngraph imports batch normalization's inference form")
    if a.get("spatial", 1) != 1:
        imp.refuse("spatial=0 (statistics per position): nngraph's are per channel")
    gamma, beta, mean, var = (imp.const(n) for n in node.input[1:5])
    if any(v is None for v in (gamma, beta, mean, var)):
        imp.refuse("its scale, bias or statistics are computed from data")
    shape = imp.shape(node.input[0])
    if not 1 <= len(shape) <= 3:
        imp.refuse(f"an input of {len(shape)} axes per sample: nngraph's batchnorm takes "
                   "(C,), (C, L) or (C, H, W)")
    x = imp.layer_input(node.input[0])
    momentum = float(a.get("momentum", 0.9))
    name = imp.add_layer("batchnorm", [x], shape, params={"gamma": gamma, "beta": beta},
                         state={"running_mean": mean, "running_var": var},
                         eps=float(a.get("epsilon", 1e-5)),
                         momentum=momentum if 0 <= momentum < 1 else None)
    imp.set(node.output[0], Value(name, shape))


def _pool_common(imp, node, a, ceil_pads=False):
    kernel = list(a["kernel_shape"])
    if len(kernel) not in (1, 2):
        imp.refuse(f"{len(kernel)}-D pooling: nngraph pools 1-D and 2-D inputs")
    strides = list(a.get("strides", [1] * len(kernel)))      # ONNX's default, not the size
    if any(d != 1 for d in a.get("dilations", [1] * len(kernel))):
        imp.refuse("dilations: nngraph's pooling windows are dense")
    spatial = imp.shape(node.input[0])[1:]
    pad = padding(imp, a, spatial, kernel, strides, [1] * len(kernel), asymmetric=True)
    if isinstance(pad, tuple) and len(kernel) != 2:
        imp.refuse(f"pads {a['pads']} are asymmetric: nngraph pads 2-D pools on their own "
                   "(pad2d), 1-D pools on both sides alike")
    if a.get("ceil_mode", 0) and pad != "same":      # auto_pad SAME sets the size itself
        pad = _ceil(imp, node, kernel, strides, spatial, pad, ceil_pads)
    return kernel, strides, pad


def _ceil(imp, node, kernel, strides, spatial, pad, ceil_pads):
    """ceil_mode=1: where it adds a window at the far end, a 2-D max pool is padded there
    (with -inf, as pads are) so that the window exists; others are refused."""
    lo, hi = pad if isinstance(pad, tuple) else ([0] * len(kernel),) * 2 \
        if pad == "valid" else (pad, pad)
    out = imp.shape(node.output[0])[1:]
    extra = [max(0, (o - 1) * s + k - (size + p + q))
             for o, s, k, size, p, q in zip(out, strides, kernel, spatial, lo, hi)]
    if not any(extra):
        return pad
    if not ceil_pads or len(kernel) != 2:
        imp.refuse("ceil_mode=1 where it changes the output size: nngraph rounds down (a 2-D "
                   "max pool is padded to match; other pools are not)")
    return tuple(lo), tuple(q + e for q, e in zip(hi, extra))


@imports("MaxPool")
def maxpool(imp: Importer, node):
    a = imp.attrs()
    if len(node.output) > 1 and node.output[1]:
        imp.refuse("the Indices output: nngraph's max pooling returns values only")
    kernel, strides, pad = _pool_common(imp, node, a, ceil_pads=True)
    if isinstance(pad, tuple):
        return padded_pool(imp, node, "maxpool2d", kernel, strides, pad)
    x = imp.layer_input(node.input[0])
    shape = imp.shape(node.output[0])
    name = imp.add_layer("maxpool2d" if len(kernel) == 2 else "maxpool1d", [x], shape,
                         size=kernel, stride=strides, padding=pad)
    imp.set(node.output[0], Value(name, shape))


@imports("AveragePool")
def avgpool(imp: Importer, node):
    a = imp.attrs()
    kernel, strides, pad = _pool_common(imp, node, a)
    if len(kernel) != 2:
        imp.refuse("1-D average pooling: nngraph's avgpool2d is 2-D")
    include = bool(a.get("count_include_pad", 0))
    if isinstance(pad, tuple):
        return padded_pool(imp, node, "avgpool2d", kernel, strides, pad, include)
    x = imp.layer_input(node.input[0])
    shape = imp.shape(node.output[0])
    name = imp.add_layer("avgpool2d", [x], shape, size=kernel, stride=strides, padding=pad,
                         count_include_pad=None if include or pad == "valid" else False)
    imp.set(node.output[0], Value(name, shape))


@imports("GlobalAveragePool")
def global_avgpool(imp: Importer, node):
    """nngraph's global_avgpool2d gives (C,); ONNX's (C, 1, 1), which the Flatten or Reshape
    that usually follows makes (C,) again (import_shapes.py)."""
    shape = imp.shape(node.input[0])
    if len(shape) != 3:
        imp.refuse("a global pool over a rank other than 2-D: nngraph's is global_avgpool2d")
    x = imp.layer_input(node.input[0])
    name = imp.add_layer("global_avgpool2d", [x], (shape[0],))
    imp.set(node.output[0], Value(name, (shape[0],), onnx_shape=(shape[0], 1, 1)))


@imports("Gemm")
def gemm(imp: Importer, node):
    """y = alpha A B' + beta C with B (and C) constant: a dense layer, alpha folded into W
    and beta into b."""
    a = imp.attrs()
    w, c = imp.const(node.input[1]), imp.const(node.input[2]) if len(node.input) > 2 else None
    if a.get("transA", 0):
        imp.refuse("transA=1: the data operand of a dense layer is not transposed")
    if w is None or (len(node.input) > 2 and node.input[2] and c is None):
        imp.refuse("its B or C operand is computed from data; a dense layer holds them")
    w = (w.T if a.get("transB", 0) else w) * np.float32(a.get("alpha", 1.0))
    params = {"W": w}
    if c is not None:
        try:
            params["b"] = np.broadcast_to(c * np.float32(a.get("beta", 1.0)),
                                          (1, w.shape[1]))[0]
        except ValueError:
            imp.refuse(f"C of shape {c.shape} is not a bias of {w.shape[1]} units")
    x = imp.layer_input(node.input[0])
    _dense(imp, node, x, params)


def _dense(imp, node, x, params):
    shape = imp.shape(node.output[0])
    name = imp.add_layer("dense", [x], shape, params=params, units=int(params["W"].shape[1]),
                         use_bias=None if "b" in params else False)
    imp.set(node.output[0], Value(name, shape))


@imports("MatMul")
def matmul(imp: Importer, node):
    w = imp.const(node.input[1])
    if w is None or w.ndim != 2:
        imp.refuse("a product of two computed tensors, or by a constant that is not a "
                   "matrix: nngraph's dense layer multiplies data by its weights")
    _dense(imp, node, imp.layer_input(node.input[0]), {"W": w})


FOLDS_INTO = {"dense": -1, "conv1d": 0, "conv2d": 0, "conv2d_transpose": 0, "scale": 0}
"""Layers an elementwise op with a constant folds into, and their channel axis."""


def _per_channel(imp, c, shape, axis):
    """A constant that broadcasts over a (batch, *shape) tensor as one value per channel of
    `axis`, as that vector; else refused."""
    try:
        full = np.broadcast_to(np.asarray(c), (1,) + tuple(shape))[0]
    except ValueError:
        imp.refuse(f"a constant of shape {np.shape(c)} that does not broadcast to {shape}")
    moved = np.moveaxis(full, axis, -1).reshape(-1, shape[axis])
    if not np.all(moved == moved[:1]):
        imp.refuse("a constant that differs within a channel: nngraph takes only a bias or "
                   "scale per channel (folded into the layer before, or a scale layer)")
    return moved[0]


def fold_constant(imp: Importer, node, data: str, c, op: str) -> None:
    """data (+ - * /) constant, folded into the dense, convolution or scale layer that alone
    computes `data`: a bias added, or weights and bias scaled; else a scale layer of its own
    (Caffe's BatchNorm + Scale, a scale after a concat), which what follows may fold into."""
    v = imp.data(data)
    layer = imp.layer(v.name)
    if layer is None or layer["op"] not in FOLDS_INTO or imp.uses.get(data) != 1 or \
            v.view or v.onnx_shape is not None:
        return scale_layer(imp, node, data, c, op)
    axis = FOLDS_INTO[layer["op"]] % len(v.shape)
    vec = _per_channel(imp, c, v.shape, axis).astype(np.float64)
    p = imp.params[v.name]
    b = np.asarray(p.get("b", np.zeros(v.shape[axis])), dtype=np.float64)
    if op in ("Add", "Sub"):
        b = b + vec if op == "Add" else b - vec
    else:
        scale = vec if op == "Mul" else 1.0 / vec
        w = np.asarray(p["W"], dtype=np.float64)
        w_axis = 1 if layer["op"] in ("dense", "conv2d_transpose") else 0
        shape = [1] * w.ndim
        shape[w_axis] = -1
        p["W"] = w * scale.reshape(shape)
        b = b * scale
    p["b"] = b
    layer.pop("use_bias", None)
    imp.set(node.output[0], Value(v.name, v.shape))


def scale_layer(imp: Importer, node, data: str, c, op: str) -> None:
    """data (+ - * /) a per-channel constant as a scale layer: W the factor (ones for + and
    -), b the term, none (use_bias false) for * and /, until an Add folds into it."""
    shape = imp.shape(data)
    if not shape:
        imp.refuse(f"{node.op_type} of a scalar per sample by a constant: nngraph's scale "
                   "works per channel")
    vec = _per_channel(imp, c, shape, 0).astype(np.float64)
    ones = np.ones_like(vec)
    params = {"W": 1.0 / vec if op == "Div" else vec if op == "Mul" else ones}
    if op in ("Add", "Sub"):
        params["b"] = vec if op == "Add" else -vec
    x = imp.layer_input(data)
    name = imp.add_layer("scale", [x], shape, params=params,
                         use_bias=None if "b" in params else False)
    imp.set(node.output[0], Value(name, shape))


@imports("Add", "Sub", "Mul", "Div")
def arithmetic(imp: Importer, node):
    a, b = node.input[0], node.input[1]
    ca, cb = imp.const(a), imp.const(b)
    if cb is not None and node.op_type == "Div" and imp.data(a).view == "neg_square":
        from .import_patterns import gaussian_exponent
        return gaussian_exponent(imp, node, cb)
    if cb is not None:
        return fold_constant(imp, node, a, cb, node.op_type)
    if ca is not None:
        if node.op_type in ("Sub", "Div"):
            imp.refuse(f"a constant {'minus' if node.op_type == 'Sub' else 'divided by'} "
                       "data: nngraph has no layer for it")
        return fold_constant(imp, node, b, ca, node.op_type)
    if node.op_type == "Mul" and a == b and imp.readers.get(node.output[0]) == ["Neg"]:
        from .import_patterns import square
        return square(imp, node)
    if node.op_type == "Div" and imp.data(a).view:
        imp.refuse("a division of computed tensors: nngraph has no layer for it")
    if node.op_type in ("Sub", "Div"):
        imp.refuse(f"{node.op_type} of two computed tensors: nngraph merges with add, "
                   "multiply and concat only")
    merge(imp, node, "add" if node.op_type == "Add" else "multiply", [a, b])


@imports("Sum")
def sum_(imp: Importer, node):
    if len(node.input) == 1:
        return imp.set(node.output[0], imp.data(node.input[0]))
    merge(imp, node, "add", list(node.input))


def merge(imp: Importer, node, op: str, tensors: list, **attrs) -> None:
    if any(imp.const(t) is not None for t in tensors):
        imp.refuse(f"a constant operand among several: nngraph's {op} merges layers only")
    shapes = [imp.shape(t) for t in tensors]
    if op != "concat" and len(set(shapes)) != 1:
        imp.refuse(f"operands of shapes {shapes}: nngraph's {op} takes identical shapes "
                   "(no broadcasting)")
    ins = [imp.layer_input(t) for t in tensors]
    shape = imp.shape(node.output[0])
    name = imp.add_layer(op, ins, shape, **attrs)
    imp.set(node.output[0], Value(name, shape))


@imports("Concat")
def concat(imp: Importer, node):
    axis = imp.attrs()["axis"]
    rank = len(imp.shape(node.input[0])) + 1
    axis = axis % rank
    if axis == 0:
        imp.refuse("axis 0 is the batch: nngraph concatenates within each sample")
    merge(imp, node, "concat", list(node.input), axis=axis - 1)
