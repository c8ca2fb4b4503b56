"""What the loss lowerings share."""
from __future__ import annotations


def gradient_target(site, x):
    """Where a loss kernel writes d loss / d x: the gradient buffer in training; in evaluate,
    when training has the same kernel, a scratch buffer, so that evaluate runs that kernel
    and has none of its own to compile (the gradient of a batch of logits costs next to
    nothing beside the loss); None for a kernel without the gradient."""
    if not site.has_grad(x):
        return None
    if len(site.group.nodes) > 1:
        return site.grad(x)
    if site.gen.mode == "evaluate":
        return site.scratch("g", site.shape(x))
    return None
