"""Autodiff as a graph pass: add the backward graph to the lowered forward graph.

For every forward node whose output influences a root (a loss) *and* depends on something
being differentiated (a trainable parameter, or an input asked for), two nodes are added:
    Grad(n)    the gradient of n's output: the sum of what n's consumers send back (fan-out
               accumulates here), or the root's seed (a loss's weight)
    Vjp(n)     n's op's backward rule applied to Grad(n); its outputs are the gradients of
               n's inputs (by index) and of n's parameters ('W', 'b', ...)
Nothing is built for frozen parameters or for the part of the network before the first
trainable one (a frozen feature extractor costs no backward work). Regularization
penalties and the optimizer update are applied by the backend's update step.
"""
from __future__ import annotations

import networkx as nx

from ..ir import Grad, GradNode, IRGraph, Vjp, VjpNode


def autodiff(g: IRGraph, seeds: dict, params: dict, wrt_inputs=()) -> IRGraph:
    """`seeds` maps each root node to d(total)/d(root): a loss's weight, or 'ones'."""
    forward = _forward_order(g)
    sources = {n for n in forward
               if any(params[k].trainable for k in g.node(n).params.values())}
    sources |= set(wrt_inputs)
    downstream = set(sources)
    for n in sources:
        downstream |= nx.descendants(g, n)
    needed = downstream & _reaches(g, seeds)
    backward = []
    for n in reversed(forward):
        if n not in needed:
            continue
        d = g.node(n)
        grad, vjp = Grad(n), Vjp(n)
        _add_grad(g, n, seeds.get(n))
        slots = tuple(j for j, src in enumerate(d.inputs) if src in needed and
                      _differentiable(d, j))
        pslots = {p: key for p, key in d.params.items() if params[key].trainable}
        g.add(vjp, VjpNode(slots, pslots))
        g.add_edge(grad, vjp)
        for src in [n] + list(d.inputs):          # the values the backward rule reads
            g.add_edge(src, vjp)
        backward += [grad, vjp]
    for name in wrt_inputs:
        if name in needed:
            _add_grad(g, name, None)
            backward.append(Grad(name))
    g.graph.update(forward=forward, backward=backward, needs_grad=needed)
    return g


def _reaches(g, seeds) -> set:
    """The nodes a gradient flows back to from the roots: through differentiable inputs
    only, so a layer read only as a loss's label (a target) gets no backward."""
    out, stack = set(seeds), list(seeds)
    while stack:
        d = g.node(stack.pop())
        for j, src in enumerate(d.inputs):
            if src not in out and _differentiable(d, j):
                out.add(src)
                stack.append(src)
    return out


def _add_grad(g, n, seed):
    grad = Grad(n)
    g.add(grad, GradNode(g.node(n).shape, seed))
    for c in list(g.successors(n)):
        if isinstance(c, str) and Vjp(c) in g:
            g.add_edge(Vjp(c), grad)


def _forward_order(g):
    index = {n: i for i, n in enumerate(g.nodes)}
    return [n for n in nx.lexicographical_topological_sort(g, key=index.__getitem__)
            if isinstance(n, str) and g.node(n).kind != "input"]


def _differentiable(d, j) -> bool:
    allowed = d.op.differentiable_inputs
    return allowed is None or j in allowed
