"""What the loss lowerings share."""
from __future__ import annotations


def gradient_target(site, x):
    """Where a loss kernel writes d loss / d x (x its prediction): the gradient
    buffer in training (its first contribution; a later one goes to a scratch buffer added
    into it, so that two losses, or a loss and a layer, reading x add up); in evaluate,
    when training has the same kernel, a scratch buffer, so that evaluate runs that kernel
    and has none of its own to compile (the gradient of a batch of logits costs next to
    nothing beside the loss); None for a kernel without the gradient."""
    if not site.has_grad(x):
        return None
    if len(site.group.nodes) > 1:       # training: x's gradient, or a scratch added into it
        n = site.group.anchor
        return site.input_grad(n, site.node(n).inputs.index(x))
    if site.gen.mode == "evaluate":
        return site.scratch("g", site.shape(x))
    return None
