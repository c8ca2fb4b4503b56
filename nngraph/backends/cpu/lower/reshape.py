"""flatten and reshape: the same values in a new shape, a view of the input wherever the arena
holds both (no code runs), else a copy."""
from __future__ import annotations

from . import Kernel, View, lowers


@lowers("reshape", kind="forward")
def copy_forward(site):
    """flatten / reshape: the same values in a new shape; a view of the input where the
    arena holds both (no kernel, no copy), else a copy."""
    n = site.group.nodes[0]
    d = site.node(n)
    x, y = site.val(d.inputs[0]), site.val(n)
    if len(site.group.nodes) == 1 and site.alias(y, x):
        return View(y, x)
    return Kernel(_COPY_ARGS, _COPY, [x, y, "True"])


# flatten / reshape and their backward: one kernel serves them all. Its arrays come in the
# same order both ways (a shaped as the op's input, b as its output), so that one compiled
# signature serves both directions (a signature each would be one more cold compile).
_COPY_ARGS = ["a", "b", "forward"]
_COPY = ["    af = _flat(a)", "    bf = _flat(b)",
         "    if forward:",
         "        for i in range(af.size):", "            bf[i] = af[i]",
         "    else:",
         "        for i in range(af.size):", "            af[i] = bf[i]"]


@lowers("reshape", kind="backward")
def copy_backward(site):
    b = site.group.nodes[0]
    n = b.of
    gx = site.input_grad(n, 0)
    if not gx:
        return None
    gy = site.grad(n)
    if len(site.group.nodes) == 1 and site.alias(gy, gx):
        return View(gy, gx)
    return Kernel(_COPY_ARGS, _COPY, [gx, gy, "False"])
