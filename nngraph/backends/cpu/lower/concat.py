"""concat: the inputs copied into their slices of the output, the gradient's slices copied
back into the inputs' gradients.

Not a view: the output holds, for each sample (and each index before the axis), every
input's values one after another, so an input's slice of it is strided across the batch,
and the kernels that write the inputs (the convolutions' copy back, the generated loops over
_flat arrays) write C-contiguous buffers only. The copy is one pass over the output.

The output is seen as rows of `width` values (rows: the batch times the dimensions before
the axis), input j as rows of w_j values, which go at offset at_j of each output row. One
kernel copies both ways, so that a concat and its backward with as many parts compile once;
the row counts and offsets are arguments, so concats of any shapes share it too.
"""
from __future__ import annotations

import math

from . import Kernel, lowers


def _rows_and_offsets(site, n):
    """(dimensions before the axis, per sample; each input's offset in an output row)."""
    d = site.node(n)
    shapes = [site.shape(i) for i in d.inputs]
    axis = d.attrs.axis % len(shapes[0])
    inner = math.prod(shapes[0][axis + 1:])
    offsets, at = [], 0
    for s in shapes:
        offsets.append(at)
        at += s[axis] * inner
    return math.prod(shapes[0][:axis]), offsets


def _copy(parts: int):
    """The kernel's arguments and body: `whole` (the output or its gradient) and `parts`
    arrays with their offsets; forward: parts into whole, else whole into parts."""
    args = ["whole", "outer", "forward"] + [a for j in range(parts) for a in (f"p{j}", f"at{j}")]
    body = ["    wf = _flat(whole)", "    rows = whole.shape[0] * outer",
            "    if rows == 0:", "        return 0.0", "    width = wf.size // rows"]
    for j in range(parts):
        body += [f"    p{j}f = _flat(p{j})", f"    w{j} = p{j}f.size // rows"]
    for forward in (True, False):
        body.append("    if forward:" if forward else "    else:")
        body += ["        for r in range(rows):", "            o = r * width"]
        for j in range(parts):
            src, dst = (f"p{j}f[r * w{j} + i]", f"wf[o + at{j} + i]")
            if not forward:
                src, dst = dst, src
            body += [f"            for i in range(w{j}):", f"                {dst} = {src}"]
    return args, body


@lowers("concat", kind="forward")
def concat_forward(site):
    n = site.group.nodes[0]
    d = site.node(n)
    outer, offsets = _rows_and_offsets(site, n)
    args, body = _copy(len(d.inputs))
    call = [site.val(n), str(outer), "True"]
    for i, at in zip(d.inputs, offsets):
        call += [site.val(i), str(at)]
    return Kernel(args, body, call)


@lowers("concat", kind="backward")
def concat_backward(site):
    b = site.group.nodes[0]
    n = b.of
    outer, offsets = _rows_and_offsets(site, n)
    targets = [(site.input_grad(n, j), at) for j, at in enumerate(offsets)]
    targets = [(t, at) for t, at in targets if t]
    if not targets:
        return None
    args, body = _copy(len(targets))
    call = [site.grad(n), str(outer), "False"]
    for t, at in targets:
        call += [t, str(at)]
    return Kernel(args, body, call)
