"""concat: one thread per output value copies it from the input whose slice holds it; the
backward copies the gradient's slices back the same way. The output is seen as rows of
`width` values (the batch times the dimensions before the axis), input j as rows of w_j
values at offset at_j of each output row; widths and offsets are literals of the kernel."""
from __future__ import annotations

import math

from . import Launch, lowers


def _slices(site, n) -> tuple:
    """(the output row's width, each input's (offset, width) in it)."""
    d = site.node(n)
    shapes = [site.shape(i) for i in d.inputs]
    axis = d.attrs.axis % len(shapes[0])
    inner = math.prod(shapes[0][axis + 1:])
    out, at = [], 0
    for s in shapes:
        out.append((at, s[axis] * inner))
        at += s[axis] * inner
    return at, out


def _copy(width, slices, forward: bool) -> list:
    """The kernel's body: `whole` (flat) and one flat part per (name, offset, width)."""
    body = [f"    r, k = i // {width}, i % {width}"]
    for j, (part, at, w) in enumerate(slices):
        test = "if" if j == 0 else "elif"
        src, dst = f"{part}[r * {w} + k - {at}]", "whole[i]"
        if not forward:
            src, dst = dst, src
        body += [f"    {test} {at} <= k < {at + w}:", f"        {dst} = {src}"]
    return body


@lowers("concat", kind="forward")
def concat_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    width, slices = _slices(site, n)
    parts = [(f"p{j}", at, w) for j, (at, w) in enumerate(slices)]
    return Launch(["whole"] + [p for p, _, _ in parts], _copy(width, parts, True),
                  [site.val(n)] + [site.val(i) for i in d.inputs], size="whole.size", flat=True)


@lowers("concat", kind="backward")
def concat_backward(site):
    n = site.group.nodes[0].of
    width, slices = _slices(site, n)
    targets = [(site.input_grad(n, j), at, w) for j, (at, w) in enumerate(slices)]
    targets = [(t, at, w) for t, at, w in targets if t]
    if not targets:
        return None
    parts = [(f"g{j}", at, w) for j, (_, at, w) in enumerate(targets)]
    return Launch(["gwhole"] + [p for p, _, _ in parts],
                  [line.replace("whole[i]", "gwhole[i]") for line in _copy(width, parts, False)],
                  [site.grad(n)] + [t for t, _, _ in targets], size="gwhole.size", flat=True)
