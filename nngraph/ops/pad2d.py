"""2-D padding of NCHW inputs on the two spatial axes, as Keras' ZeroPadding2D, PyTorch's
ZeroPad2d / ConstantPad2d / ReflectionPad2d / ReplicationPad2d and ONNX's Pad on H and W:

    padding: 1                 one number for all four sides
    padding: [1, 2]            [vertical, horizontal]: top = bottom = 1, left = right = 2
    padding: [0, 1, 0, 1]      [top, bottom, left, right]

`mode` is what the new cells hold: `constant` (`value`, 0 by default; -inf, YAML's `-.inf`,
ahead of a max pool makes padding that never wins), `reflect` (mirrored without repeating the edge, numpy's
and PyTorch's reflect: each pad must be smaller than that axis) or `edge` (the edge value
repeated). In constant mode a negative pad crops that side, as ONNX's Pad does; the import
of an average pool that excludes asymmetric padding uses it (onnx/import_spatial.py).

Backward: constant mode crops the gradient back (and pads cropped sides with zeros);
reflect and edge add each padded cell's gradient to the cell it copies.
"""
import math

import numpy as np

from .base import Attr, AttrError, Choice, Float, Fusion, OpDef, ShapeError, _is_int

SIDES = ("top", "bottom", "left", "right")


class Pads:
    """An int, [vertical, horizontal] or [top, bottom, left, right] -> (t, b, l, r)."""

    def check(self, v):
        if _is_int(v):
            v = [v]
        if not isinstance(v, list) or len(v) not in (1, 2, 4) or not all(map(_is_int, v)):
            raise AttrError("expected an integer, [vertical, horizontal] or [top, bottom, "
                            f"left, right], got {v!r}")
        if len(v) == 1:
            return (v[0],) * 4
        if len(v) == 2:
            return (v[0], v[0], v[1], v[1])
        return tuple(v)

    def schema(self):
        return {"oneOf": [{"type": "integer"},
                          {"type": "array", "items": {"type": "integer"},
                           "minItems": 2, "maxItems": 2},
                          {"type": "array", "items": {"type": "integer"},
                           "minItems": 4, "maxItems": 4}]}


class Value(Float):
    """Any number, -inf and inf included (a constant that a max pool never picks)."""

    def check(self, v):
        if isinstance(v, str) and v.strip().lower() in ("-inf", "inf", "+inf"):
            v = float(v)
        if isinstance(v, float) and math.isinf(v):
            return v
        return super().check(v)

    def schema(self):
        return {"oneOf": [{"type": "number"}, {"enum": ["-inf", "inf"]}]}


def shape(a, shapes):
    (x,) = shapes
    if len(x) != 3:
        raise ShapeError(f"pad2d expects (channels, height, width), got "
                         f"{'x'.join(map(str, x)) or 'a scalar'}")
    pads = a.padding
    if a.mode != "constant" and min(pads) < 0:
        raise ShapeError(f"a negative pad crops, which only mode 'constant' does; got "
                         f"{list(pads)} with mode '{a.mode}'", attr="padding")
    out = []
    for axis, (n, lo, hi) in enumerate(zip(x[1:], pads[::2], pads[1::2])):
        name = ("height", "width")[axis]
        if a.mode == "reflect" and max(lo, hi) >= n:
            raise ShapeError(f"reflect padding of {max(lo, hi)} needs a {name} above it, "
                             f"got {n}", attr="padding")
        if n + lo + hi < 1:
            raise ShapeError(f"cropping {-lo - hi} of a {name} of {n} leaves nothing",
                             attr="padding")
        out.append(n + lo + hi)
    return (x[0],) + tuple(out)


def _split(pads):
    """(crop, pad) per side: ((t, b), (l, r)) of each, both non-negative."""
    crop = [max(-p, 0) for p in pads]
    grow = [max(p, 0) for p in pads]
    return (crop[:2], crop[2:]), (grow[:2], grow[2:])


def _crop(x, crop):
    (t, b), (l, r) = crop
    return x[:, :, t:x.shape[2] - b, l:x.shape[3] - r]


def forward(ctx, a, xs, p):
    crop, grow = _split(a.padding)
    x = _crop(xs[0], crop)
    width = [(0, 0), (0, 0), tuple(grow[0]), tuple(grow[1])]
    if a.mode == "constant":
        return np.pad(x, width, constant_values=np.asarray(a.value, x.dtype))
    return np.pad(x, width, mode=a.mode)


def _fold(g, axis, lo, hi, mode):
    """Adjoint of numpy's reflect/edge pad along `axis`: padded cells add to their source."""
    n = g.shape[axis] - lo - hi
    core = np.take(g, range(lo, lo + n), axis=axis).copy()
    for k in range(lo):                      # cell lo-1-k of the padding copies source src
        src = k + 1 if mode == "reflect" else 0
        _add(core, axis, src, np.take(g, lo - 1 - k, axis=axis))
    for k in range(hi):
        src = n - 2 - k if mode == "reflect" else n - 1
        _add(core, axis, src, np.take(g, lo + n + k, axis=axis))
    return core


def _add(core, axis, i, v):
    index = [slice(None)] * core.ndim
    index[axis] = i
    core[tuple(index)] += v


def backward(ctx, a, xs, p, y, gy):
    x = xs[0]
    crop, ((t, b), (l, r)) = _split(a.padding)
    if a.mode == "constant":
        g = gy[:, :, t:gy.shape[2] - b, l:gy.shape[3] - r]
    else:
        g = _fold(_fold(gy, 2, t, b, a.mode), 3, l, r, a.mode)
    (ct, cb), (cl, cr) = crop
    return [np.pad(g, [(0, 0), (0, 0), (ct, cb), (cl, cr)])], {}


def flops(a, shapes, out):
    return 0


OP = OpDef("pad2d", "layer", Fusion.INJECTIVE, shape,
           attrs=(Attr("padding", Pads(), doc="cells added per side: n, [vertical, "
                       "horizontal] or [top, bottom, left, right]; negative crops "
                       "(constant mode)"),
                  Attr("mode", Choice(("constant", "reflect", "edge")), "constant",
                       "what the new cells hold: value, the mirror image, the edge"),
                  Attr("value", Value(), 0.0, "the constant of mode constant; -inf allowed")),
           flops=flops, forward=forward, backward=backward,
           doc="Pads the height and width of NCHW inputs: a constant, reflection or edge.")
