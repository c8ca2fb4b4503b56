"""Program pictures: the lowered forward graph, its backward graph, and the fused kernels.

    nngraph viz specs/lenet5.yaml -o lenet5.png --fused                one cluster per kernel
    nngraph viz specs/lenet5.yaml -o lenet5.png --backward             grad:/vjp: nodes too
    nngraph viz specs/lenet5.yaml -o lenet5.png --fused --backward

These draw what the compiler sees, not what the user wrote: a layer's activation is a node
of its own (`c1` then `c1:relu`). With --backward, gradients climb on dashed edges in a
column beside the forward pass: each `vjp:n` (n's backward rule) sits level with `n`, the
`grad:n` it reads (the sum of what n's consumers send back) just below it, and the parameter
gradients it writes (the notes) to its right. With --fused, each fused group is a cluster
labelled with its kernel and coloured by what runs it on the CPU backend: generated code, a
hand-written kernel of kernels/cpu, or the op's reference rule (see backends/cpu/calls.py).
One generated kernel serves every group whose code is the same (backends/cpu/codegen.py _add_kernel);
such a kernel gets one short name, `K2: dense[+relu]` (brackets: what only some of its groups
fuse), in each group that runs it, and those clusters say `shared (×3)`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import graphviz

from .backends import codegen_class
from .backends.cpu.calls import codegen, group_calls
from .ir import Grad, Vjp, forward_of
from .program import build_program
from .shapes import show_shape
from .viz_style import (FONT, RANKDIRS, STYLE, TARGET_EDGE, esc, heading, input_style,
                        is_target_edge, node_style, small, target_keys)

if TYPE_CHECKING:
    from .graph import Network

# Cluster fill and border by what runs a fused group, and the legend's words for it.
RUNS = {
    "generated": ("#ecfdf3", "#22a05a", "generated {jit} kernel"),
    "hand-written": ("#eaf2ff", "#3b82f6", "hand-written kernel (kernels/{backend})"),
    "reference": ("#fff0f0", "#dc4444", "reference rule (numpy, from the driver)"),
    "view": ("#f5f5f5", "#9ca3af", "a view of its input (no kernel, no copy)"),
}
JIT = {"cpu": "njit", "cuda": "@cuda.jit"}     # what the legend calls a generated kernel
GRAD = "#7c3aed"                      # gradients and backward rules
VJP_FILL = "#f1ebff"
PGRAD = ("#fff4e0", "#e08a1e")        # parameter gradients
READ = "#c3c8d1"                      # forward values a backward rule may read
BLOCK_FILL = "#f7f8fa"


def to_dot(net: Network, rankdir: str = "TB", fused: bool = False, backward: bool = False,
           dtype: str = "float32", backend: str = "cpu") -> graphviz.Digraph:
    """The lowered program as a Digraph: its forward nodes, the backward graph too with
    `backward`, and one cluster per fused group with `fused` (the groups of `backend`'s
    code, 'cpu' or 'cuda': a CUDA module is generated, and drawn, without a GPU).

        >>> print(to_dot(nngraph.load("specs/lenet5.yaml"), fused=True).source)  # doctest: +SKIP
        digraph lenet5 { ... subgraph cluster_group_c1_relu { ...
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    return _Picture(net, rankdir, fused, backward, dtype, backend).digraph()


class _Picture:
    def __init__(self, net, rankdir, fused, backward, dtype, backend="cpu"):
        self.net, self.fused, self.backward, self.backend = net, fused, backward, backend
        self.program = prog = build_program(net)
        self.graph = g = prog.graph
        gen = codegen(prog, dtype, base=codegen_class(backend)) if fused else None
        self.calls = group_calls(prog, dtype, gen=gen) if fused else {}
        self.targets = set(net.label_inputs)
        # {conv group: the pooling it also does in evaluate and predict} (backends/cpu/codegen.py)
        self.pools = gen.pooled if fused else {}
        self.forward = [n for n in g if isinstance(n, str)]
        self.back = list(prog.backward) if backward else []
        self.ids = {n: f"n{i}" for i, n in enumerate(self.forward + self.back)}
        self.order = {n: i for i, n in enumerate(self.forward)}
        self.labels = []                              # (label node id, node level with it)
        self.group_of = {}                            # node -> fused group name
        for name, c in self.calls.items():
            for n in c.group.nodes:
                if n in self.ids:
                    self.group_of[n] = name
        if fused and backward:
            self._internal_grads()
        self.shared = self._shared_kernels(gen.kernels_by_code) if fused else {}
        self.g = graphviz.Digraph(net.name, graph_attr={
            "rankdir": rankdir, "label": self._title(), "labelloc": "t", "fontname": FONT,
            "nodesep": "0.3", "ranksep": "0.35", "pad": "0.3", "bgcolor": "white",
            "newrank": "true",               # rank=same across clusters
        }, node_attr={
            "shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "11",
            "margin": "0.12,0.05", "penwidth": "1.2",
        }, edge_attr={"color": "#6b7280", "arrowsize": "0.7"})

    def _internal_grads(self):
        """A grad: node made and used inside one backward group never leaves that group's
        kernel (the activation's backward is applied in place), so it is drawn inside."""
        g = self.graph
        for b in self.back:
            if not isinstance(b, Grad) or g.in_degree(b) == 0:
                continue
            touching = {self.group_of.get(x) for x in [*g.predecessors(b), *g.successors(b)]}
            if len(touching) == 1 and None not in touching:
                self.group_of[b] = touching.pop()

    def _shared_kernels(self, generated) -> dict:
        """{generated kernel: (short name, groups that run it)} for each kernel that several
        drawn groups run: its own name (k_fc_relu_logits) reads as if it were fc's alone."""
        users: dict = {}
        for c in self.calls.values():
            if self.backward or c.group.kind != "backward":
                for k in dict.fromkeys(c.callees):
                    if k in generated:
                        users.setdefault(k, []).append(c)
        shared = [(k, cs) for k, cs in users.items() if len(cs) > 1]
        return {k: (f"K{i}: {_merged([self._ops(c) for c in cs])}"
                    + (" backward" if cs[0].group.kind == "backward" else ""), cs)
                for i, (k, cs) in enumerate(shared, 1)}

    def _ops(self, c) -> list:
        """The ops a group's generated kernel computes, in forward order: ['dense', 'relu'];
        beside a hand-written kernel, the activation it applies."""
        g = self.graph
        nodes = [c.group.epilogue] if c.runs != "generated" and c.group.epilogue else [
            n for n in c.group.nodes if isinstance(n, str)
        ] or c.group.nodes
        fwd = sorted({forward_of(n) for n in nodes}, key=lambda n: self.order[n])
        return [g.node(n).op.name for n in fwd]

    def _drawn(self, n) -> bool:
        """Every node, but for a loss whose fused group is not drawn (forward-only, fused)."""
        return n in self.ids and not (self.fused and n in self.program.losses
                                      and n not in self.group_of)

    # ---------------------------------------------------------------- the picture
    def digraph(self) -> graphviz.Digraph:
        tree: dict = {}
        for n in self.forward + self.back:
            if self._drawn(n):
                level = tree
                for key in self._path(n):
                    level = level.setdefault(key, {"nodes": [], "children": {}})["children"]
                level.setdefault(None, {"nodes": [], "children": {}})["nodes"].append(n)
        self._draw_tree(self.g, tree)
        self._edges()
        self._ranks()
        return self.g

    def _path(self, n) -> tuple:
        """Clusters around node n, outermost first: block instances, then its fused group
        (inside the block when the whole group is)."""
        blocks = self._blocks(n)
        # A block's backward half is a box of its own: Graphviz keeps the backward column
        # right of the forward one only when they are separate boxes. (A loss's group holds
        # its backward too, and stays in the forward half.)
        group = self.group_of.get(n)
        backward = self.calls[group].group.kind == "backward" if group else \
            not isinstance(n, str)
        kind = "backward block" if backward else "block"
        if group is None:
            return tuple((kind, b) for b in blocks)
        if any(self._blocks(m) != blocks for m in self.calls[group].group.nodes):
            blocks = ()
        return tuple((kind, b) for b in blocks) + (("group", group),)

    def _blocks(self, n) -> tuple:
        return tuple(self.graph.node(forward_of(n)).cluster or ())

    def _draw_tree(self, parent, level):
        for key, entry in level.items():
            if key is None:
                for n in entry["nodes"]:
                    self._node(parent, n)
                continue
            with parent.subgraph(name=f"cluster_{_slug(key[0])}_{_slug(key[1])}") as c:
                c.attr(**self._cluster_attrs(*key))
                if key[0] == "group":
                    self._group_label(c, key[1], self._members(entry))
                self._draw_tree(c, entry["children"])

    @staticmethod
    def _members(entry) -> list:
        out = list(entry["nodes"])
        for child in entry["children"].values():
            out += _Picture._members(child)
        return out

    def _cluster_attrs(self, kind, name) -> dict:
        if kind != "group":
            block = self.net.clusters.get(name, "")
            label = f"<b>{esc(name)}</b>" + (f"  <i>{esc(block)}</i>" if block else "") + (
                "  backward" if kind == "backward block" else "")
            return dict(label=f"<{label}>", style="rounded,filled,dashed", fontname=FONT,
                        fontsize="10", labeljust="l", margin="8", fillcolor=BLOCK_FILL,
                        color="#9ca3af")
        fill, border, _ = RUNS[self.calls[name].runs]
        shared = any(k in self.shared for k in self.calls[name].callees)
        return dict(label="", style="rounded,filled", fillcolor=fill, color=border,
                    penwidth="2.8" if shared else "1.4", margin="6")

    def _group_label(self, cluster, name, nodes):
        """A group's label is a text node beside the group's top node: a cluster's own label
        sits where the edges entering the cluster run through it."""
        c = self.calls[name]
        _, border, _ = RUNS[c.runs]
        callees = list(dict.fromkeys(c.callees))
        if c.runs == "generated":
            rows = [f"<b>{esc(self._kernel(k))}</b>" for k in callees] + [
                small("generated", border) + "".join(map(self._shared_tag, callees))]
        elif c.runs == "view":
            rows = [f"<b>{esc(name)}</b>", small("a view, no copy", border)]
        elif c.runs == "reference":
            ops = sorted({self.graph.node(n).op.name for n in c.reference_nodes})
            rows = [f"<b>{esc(name)}</b>", small("reference rule: " + ", ".join(ops), border)]
        else:
            rows = [f"<b>{esc(name)}</b>"] + [
                small(f"kernels/{self.backend} {k.split('.', 1)[1]}", border) if "." in k
                else small(f"+ {self._kernel(k)}", RUNS["generated"][1]) + self._shared_tag(k)
                for k in callees]
        if c.group.kind == "loss" and len(c.group.nodes) > 1 and not self.backward:
            rows.append(small("(and the loss's gradient)", "#4b5563"))
        if name in self.pools:
            rows.append(small(f"(evaluate, predict: and {self.pools[name]})", "#4b5563"))
        pooled_in = [conv for conv, pool in self.pools.items() if pool == c.group.anchor]
        if pooled_in:
            rows.append(small(f"(evaluate, predict: in {pooled_in[0]})", "#4b5563"))
        label_id = f"L{len(self.labels)}"
        left = '<br align="left"/>'
        # An SVG reader finds the function of the generated module under the short name.
        tip = "; ".join(f"{self.shared[k][0]} is {k}, run by "
                        + ", ".join(u.group.name for u in self.shared[k][1])
                        for k in callees if k in self.shared)
        cluster.node(label_id, label="<" + left.join(rows) + left + ">", shape="plaintext",
                     style="", margin="0.02,0.02", **({"tooltip": tip} if tip else {}))
        top = min(nodes, key=lambda n: self.order.get(forward_of(n), 0))
        self.labels.append((label_id, self.ids[top]))

    def _kernel(self, k) -> str:
        """A generated kernel's name in the picture: its short name where groups share it."""
        return self.shared[k][0] if k in self.shared else k

    def _shared_tag(self, k) -> str:
        if k not in self.shared:
            return ""
        return (f'  <font point-size="9" color="{RUNS["generated"][1]}"><b>shared '
                f'(×{len(self.shared[k][1])})</b></font>')

    def _title(self) -> str:
        what = []
        if self.fused:
            runs = [c.runs for c in self.calls.values()
                    if self.backward or c.group.kind != "backward"]
            what.append(f"{len(runs)} fused groups: " + ", ".join(
                f"{runs.count(r)} {r}" for r in RUNS if runs.count(r)))
            if self.shared:
                users = {u.group.name for _, us in self.shared.values() for u in us}
                what.append(f"{len(self.shared)} kernel{'s' if len(self.shared) > 1 else ''} "
                            f"shared by {len(users)} groups")
        if self.backward:
            vjps = [self.graph.node(b) for b in self.back if isinstance(b, Vjp)]
            npg = sum(len(d.params) for d in vjps)
            vjps = len(vjps)
            what.append(f"backward: {vjps} vjp nodes, {npg} parameter gradients")
        head = f"<b>{esc(self.net.name)}</b>  ·  lowered program" + "".join(
            f"  ·  {esc(w)}" for w in what)
        words = {"jit": JIT[self.backend], "backend": self.backend}
        keys = [(fill, border, "rounded", text.format(**words))
                for fill, border, text in RUNS.values()
                ] if self.fused else []
        if self.shared:
            keys.append(("white", "#374151", "bold", "K1: one kernel that several groups run"))
        if any(is_target_edge(self.graph.node(i).kind, self.graph.node(n).kind)
               for n in self.forward if self._drawn(n)
               for i in self.graph.node(n).inputs if self._drawn(i)):
            keys += target_keys(self.targets)
        if self.backward:
            keys += [(VJP_FILL, GRAD, "rounded", "vjp: backward rule"),
                     ("white", GRAD, "dashed", "∂ gradient (dashed edges: gradient flow)"),
                     (PGRAD[0], PGRAD[1], "solid", "parameter gradient")]
        return heading(f'<font point-size="16">{head}</font>', keys)

    # ---------------------------------------------------------------- nodes
    def _node(self, parent, n):
        d = self.graph.node(n)
        if isinstance(n, Grad):
            return self._grad_node(parent, n, d)
        if isinstance(n, Vjp):
            return self._vjp_node(parent, n, d)
        target = n in self.targets
        fill, border = STYLE[node_style(d.kind, d.op, d.params, target)]
        if n in self.group_of:
            fill = "white"                   # the cluster's colour says what runs it
        rows = [f"<b>{esc(n)}</b>", small(("target " if target else "") + _op_line(d),
                                            "#374151"),
                small(show_shape(d.shape), "#4b5563")]
        mine = [f"{p} {'×'.join(map(str, self.program.params[k].spec.shape))}"
                for p, k in d.params.items()]
        if mine and not self.fused:
            rows.append(small("  ".join(mine), "#6b4a12"))
        extra = {"penwidth": "2.4"} if n in self.program.outputs.values() else {}
        if d.kind == "input":
            extra.update(input_style(target))
        if d.kind == "loss":
            extra["style"] = "filled"            # square corners: the ends of the graph
        parent.node(self.ids[n], label="<" + "<br/>".join(rows) + ">", fillcolor=fill,
                    color=border, **extra)

    def _grad_node(self, parent, n, d):
        fans = self.graph.in_degree(n)
        head = f"{'Σ' if fans > 1 else ''}∂ {esc(n.of)}"   # Σ: consumers' gradients add up
        sub = f"seed {d.seed}" if d.seed is not None else show_shape(d.shape)
        parent.node(self.ids[n], label=f"<{head}<br/>{small(sub, '#4b5563')}>",
                    shape="ellipse", style="filled,dashed", fillcolor="white", color=GRAD,
                    fontsize="10", margin="0.04,0.02")

    def _vjp_node(self, parent, n, d):
        fwd = self.graph.node(n.of)
        op = fwd.op.name if fwd.op is not None else "input"
        label = f"<<b>{esc(n)}</b><br/>{small(op + ' backward', '#4c1d95')}>"
        parent.node(self.ids[n], label=label, fillcolor=VJP_FILL, color=GRAD)
        if d.params:
            rows = "".join(
                f'<tr><td align="left"><b>∂{esc(key)}</b></td><td align="right">'
                f'{small("×".join(map(str, self.program.params[key].spec.shape)), "#6b4a12")}'
                f'</td></tr>' for key in d.params.values())
            parent.node(self.ids[n] + "p", label=f'<<table border="0" cellspacing="1">{rows}'
                        '</table>>', shape="note", style="filled", fillcolor=PGRAD[0],
                        color=PGRAD[1], fontsize="10", margin="0.06,0.02")

    # ---------------------------------------------------------------- edges and ranks
    def _edges(self):
        g, ids = self.graph, self.ids
        for n in self.forward:
            for src in g.node(n).inputs:
                if self._drawn(n) and self._drawn(src):
                    inside = n in self.group_of and self.group_of.get(src) == self.group_of[n]
                    target = is_target_edge(g.node(src).kind, g.node(n).kind)
                    self.g.edge(ids[src], ids[n], **({"penwidth": "2.2", "color": "#374151"}
                                                     if inside else TARGET_EDGE if target
                                                     else {}))
        for b in self.back:
            for src in g.predecessors(b):
                if not isinstance(src, str):
                    # Drawn against the flow (dir=back) so that the layout mirrors the
                    # forward pass: gradients climb beside the layers they belong to.
                    self.g.edge(ids[b], ids[src], dir="back", style="dashed", color=GRAD,
                                penwidth="1.3")
                elif not self.fused and src != b.of:
                    self.g.edge(ids[src], ids[b], style="dotted", color=READ,
                                constraint="false", arrowsize="0.5")
            if isinstance(b, Vjp) and g.node(b).params:
                self.g.edge(ids[b], ids[b] + "p", style="dashed", color=PGRAD[1],
                            penwidth="1.2")

    def _ranks(self):
        """Group labels beside their group's top node; vjp:n level with n, to its right,
        and its parameter gradients right of it."""
        for label, top in self.labels:
            self._same_rank(top, label)
        for b in self.back:
            if isinstance(b, Vjp):
                self._same_rank(self.ids[b.of], self.ids[b])
                if self.graph.node(b).params:                   # the edge to it is drawn already
                    self._same_rank(self.ids[b], self.ids[b] + "p", edge=False)

    def _same_rank(self, left, right, edge=True):
        with self.g.subgraph() as s:
            s.attr(rank="same")
            if not edge:
                s.node(left)
                s.node(right)
                return
            # An edge within a rank orders the two nodes; drawn only when it means something.
            reads = self.backward and not self.fused and not left.startswith("L")
            s.edge(left, right, **({"style": "dotted", "color": READ, "arrowsize": "0.5"}
                                   if reads else {"style": "invis"}))


def _merged(ops: list) -> str:
    """The ops of several groups as one name: 'dense[+relu]' for [dense, relu] and [dense];
    those that not every group has are in brackets."""
    out = ""
    for i, op in enumerate(dict.fromkeys(op for seq in sorted(ops, key=len, reverse=True)
                                         for op in seq)):
        part = ("+" if i else "") + op
        out += part if all(op in seq for seq in ops) else f"[{part}]"
    return out


def _op_line(d) -> str:
    if d.op is None:
        return "input" + ("" if d.dtype in (None, "float32") else f" {d.dtype}")
    attrs = d.op.summary_attrs(d.attrs) if d.kind != "loss" else ""
    return d.op.name + (f"  {attrs}" if attrs else "")


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(name))
