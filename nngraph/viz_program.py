"""Program pictures: the lowered forward graph, its backward graph, and the fused kernels.

    nngraph viz specs/lenet5.yaml -o lenet5.png --fused                one cluster per kernel
    nngraph viz specs/lenet5.yaml -o lenet5.png --backward             grad:/vjp: nodes too
    nngraph viz specs/lenet5.yaml -o lenet5.png --fused --backward

These draw what the compiler sees, not what the user wrote: a layer's activation is a node
of its own (`c1` then `c1:relu`). With --backward, gradients flow upward on dashed edges
beside the forward pass: each `vjp:n` (n's backward rule) sits level with `n`, and the
`grad:n` it reads (the sum of what n's consumers send back) just below it; dotted grey edges
are the forward values a backward rule reads; notes on the right are the parameter
gradients the optimizer consumes. With --fused, each fused group is a cluster named after
its kernel, coloured by what runs it on the CPU backend (see codegen/cpu_calls.py).
"""
from __future__ import annotations

import graphviz

from .codegen.cpu_calls import group_calls
from .graph import Network, show_shape
from .program import build_program
from .viz import FONT, RANKDIRS, STYLE, _esc, _small, node_style

# Cluster fill and border by what runs a fused group.
RUNS = {
    "generated": ("#ecfdf3", "#22a05a", "generated njit kernel"),
    "hand-written": ("#eaf2ff", "#3b82f6", "hand-written kernel (kernels/cpu)"),
    "reference": ("#fff0f0", "#dc4444", "reference rule (numpy, from the driver)"),
}
GRAD = "#7c3aed"                      # gradient flow
PGRAD = ("#fff4e0", "#e08a1e")        # parameter gradients
READ = "#b8bec9"                      # forward values read by backward rules
BLOCK_FILL = "#f7f8fa"


def to_dot(net: Network, rankdir: str = "TB", fused: bool = False, backward: bool = False,
           dtype: str = "float32") -> graphviz.Digraph:
    """The lowered program as a Digraph: forward nodes, plus the backward graph with
    `backward`, with one cluster per fused group with `fused`."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    return _Picture(net, rankdir, fused, backward, dtype).digraph()


class _Picture:
    def __init__(self, net, rankdir, fused, backward, dtype):
        self.net, self.fused, self.backward = net, fused, backward
        self.program = prog = build_program(net)
        self.graph = g = prog.graph
        self.calls = group_calls(prog, dtype) if fused else {}
        self.forward = [n for n in g.nodes if g.nodes[n]["kind"] not in ("grad", "vjp")]
        self.back = list(prog.backward) if backward else []
        self.ids = {n: f"n{i}" for i, n in enumerate(self.forward + self.back)}
        self.pgrads = {}                              # param key -> (vjp node, id)
        for b in self.back:
            for key in g.nodes[b].get("param_slots", {}).values():
                self.pgrads[key] = (b, f"p{len(self.pgrads)}")
        self.order = {n: i for i, n in enumerate(self.forward)}
        self.labels = []                              # (label node, node level with it)
        self.group_of = {}                            # node -> group name
        for name, c in self.calls.items():
            for n in c.group.nodes:
                if n in self.ids:
                    self.group_of[n] = name
        if fused and backward:
            self._internal_grads()
        self.g = graphviz.Digraph(net.name, graph_attr={
            "rankdir": rankdir, "label": self._title(), "labelloc": "t", "fontname": FONT,
            "fontsize": "18", "nodesep": "0.3", "ranksep": "0.35", "pad": "0.3",
            "bgcolor": "white", "newrank": "true", "compound": "true",
        }, node_attr={
            "shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "11",
            "margin": "0.12,0.05", "penwidth": "1.2",
        }, edge_attr={"color": "#6b7280", "arrowsize": "0.7"})

    def _internal_grads(self):
        """A grad: node made and used inside one backward group lives in that group's kernel
        (the activation's backward applied in place), so it is drawn inside its cluster."""
        g = self.graph
        for b in self.back:
            if g.nodes[b]["kind"] != "grad":
                continue
            touching = {self.group_of.get(x) for x in list(g.predecessors(b)) + list(g.successors(b))}
            if len(touching) == 1 and None not in touching and g.in_degree(b) > 0:
                self.group_of[b] = touching.pop()

    # ---------------------------------------------------------------- whole picture
    def digraph(self) -> graphviz.Digraph:
        tree: dict = {}
        for n in self.forward + self.back:
            if self.fused and n in self.program.losses and n not in self.group_of:
                continue
            self._place(tree, n)
        self._draw_tree(self.g, tree, 0)
        self._edges()
        self._ranks()
        return self.g

    def _path(self, n) -> tuple:
        """Clusters around node n, outermost first: block instances, then its fused group."""
        d = self.graph.nodes[n]
        fwd = d.get("fwd", n)
        path = [("block", inst) for inst in self.graph.nodes[fwd].get("cluster") or ()]
        group = self.group_of.get(n)
        if group is not None:
            same = all(tuple(self.graph.nodes[self.graph.nodes[m].get("fwd", m)].get("cluster")
                             or ()) == tuple(p[1] for p in path)
                       for m in self.calls[group].group.nodes)
            path = (path if same else []) + [("group", group)]
        return tuple(path)

    def _place(self, tree, n):
        level, entry = tree, None
        for key in self._path(n):
            entry = level.setdefault(key, {"nodes": [], "children": {}})
            level = entry["children"]
        if entry is None:
            tree.setdefault(None, {"nodes": [], "children": {}})["nodes"].append(n)
        else:
            entry["nodes"].append(n)

    def _draw_tree(self, parent, level, depth):
        for key, entry in level.items():
            if key is None:
                for n in entry["nodes"]:
                    self._node(parent, n)
                continue
            with parent.subgraph(name=f"cluster_{key[0]}_{_slug(key[1])}") as c:
                c.attr(**self._cluster_attrs(key, depth))
                if key[0] == "group":
                    self._group_label(c, key[1], entry["nodes"])
                for n in entry["nodes"]:
                    self._node(c, n)
                self._draw_tree(c, entry["children"], depth + 1)

    def _cluster_attrs(self, key, depth) -> dict:
        kind, name = key
        if kind == "block":
            block = self.net.clusters.get(name, "")
            label = f"<b>{_esc(name)}</b>" + (f"  <i>{_esc(block)}</i>" if block else "")
            return dict(label=f"<{label}>", style="rounded,filled,dashed", fontname=FONT,
                        fontsize="10", labeljust="l", margin="8", fillcolor=BLOCK_FILL,
                        color="#9ca3af")
        fill, border, _ = RUNS[self.calls[name].runs]
        return dict(label="", style="rounded,filled", fillcolor=fill, color=border,
                    penwidth="1.4", margin="6")

    def _group_label(self, cluster, name, nodes):
        """A group's label is a text node level with the group's top node, rather than the
        cluster's own label, which the edges entering the cluster would run through."""
        c = self.calls[name]
        fill, border, _ = RUNS[c.runs]
        callees = list(dict.fromkeys(c.callees))
        if c.runs == "generated":
            rows = [f"<b>{_esc(k)}</b>" for k in callees] + [_small("generated", border)]
        elif c.runs == "reference":
            ops = sorted({self.graph.nodes[n]["op"].name for n in c.reference_nodes})
            rows = [f"<b>{_esc(name)}</b>", _small("reference rule: " + ", ".join(ops), border)]
        else:
            rows = [f"<b>{_esc(name)}</b>"] + [
                _small(("kernels/cpu " + k.split(".", 1)[1]) if "." in k else "+ " + k,
                       border if "." in k else "#15803d") for k in callees]
        label_id = f"L{len(self.labels)}"
        cluster.node(label_id, label="<" + '<br align="left"/>'.join(rows) +
                     '<br align="left"/>>', shape="plaintext", style="", margin="0.02,0.02")
        top = min(nodes, key=lambda n: self.rank_key(n))
        self.labels.append((label_id, self.ids[top]))

    def rank_key(self, n) -> int:
        """Where node n sits top to bottom: its forward node's position."""
        return self.order.get(self.graph.nodes[n].get("fwd", n), 0)

    def _title(self) -> str:
        net, prog = self.net, self.program
        what = []
        if self.fused:
            runs = [c.runs for c in self.calls.values()
                    if self.backward or c.group.kind != "backward"]
            what.append(f"{len(runs)} fused kernels: " + ", ".join(
                f"{runs.count(r)} {r}" for r in RUNS if runs.count(r)))
        if self.backward:
            grads = sum(1 for b in self.back if b.startswith("vjp:"))
            what.append(f"backward: {grads} vjp nodes, {len(self.pgrads)} parameter gradients")
        head = f"<b>{_esc(net.name)}</b>  ·  lowered program" + "".join(
            f"  ·  {_esc(w)}" for w in what)
        rows = [f'<tr><td colspan="6"><font point-size="16">{head}</font></td></tr>']
        keys = []
        if self.fused:
            keys += [(fill, border, text) for fill, border, text in RUNS.values()]
        if self.backward:
            keys += [("white", GRAD, "gradient (dashed: gradient flow)"),
                     (PGRAD[0], PGRAD[1], "parameter gradient")]
        if keys:
            cells = "".join(f'<td bgcolor="{fill}" color="{border}" border="1">  </td>'
                            f'<td align="left"><font point-size="10">{_esc(text)}</font></td>'
                            for fill, border, text in keys)
            rows.append(f"<tr>{cells}</tr>")
        return f'<<table border="0" cellspacing="4">{"".join(rows)}</table>>'

    # ---------------------------------------------------------------- nodes
    def _node(self, parent, n):
        d = self.graph.nodes[n]
        if d["kind"] == "grad":
            return self._grad_node(parent, n, d)
        if d["kind"] == "vjp":
            self._vjp_node(parent, n, d)
            for key in d["param_slots"].values():
                self._pgrad_node(parent if self.fused else self.g, key)
            return
        fill, border = STYLE[node_style(d)]
        if self.fused and n in self.group_of:
            fill = "white"
        rows = [f"<b>{_esc(n)}</b>", _small(_op_line(d), "#374151"),
                _small(_shape(d), "#4b5563")]
        mine = [f"{p} {'×'.join(map(str, self.program.params[k].spec.shape))}"
                for p, k in d["params"].items()]
        if mine and not self.fused:
            rows.append(_small("  ".join(mine), "#6b4a12"))
        extra = {"penwidth": "2.4"} if n in self.program.outputs.values() else {}
        if d["kind"] in ("input", "loss"):
            extra["style"] = "filled"
        parent.node(self.ids[n], label="<" + "<br/>".join(rows) + ">", fillcolor=fill,
                    color=border, **extra)

    def _grad_node(self, parent, n, d):
        fwd = d["fwd"]
        rows = [f"∂ {_esc(fwd)}", _small(show_shape(d["shape"]), "#4b5563")]
        if d.get("seed") is not None:
            rows[1] = _small(f"seed {d['seed']}", "#4b5563")
        fans = sum(1 for _ in self.graph.predecessors(n))
        if fans > 1:
            rows[0] = f"Σ∂ {_esc(fwd)}"            # fan-out: consumers' gradients add up
        parent.node(self.ids[n], label="<" + "<br/>".join(rows) + ">", shape="ellipse",
                    style="filled,dashed", fillcolor="white", color=GRAD, fontsize="10",
                    margin="0.04,0.02")

    def _vjp_node(self, parent, n, d):
        fwd = self.graph.nodes[d["fwd"]]
        op = fwd["op"].name if fwd["op"] is not None else "input"
        rows = [f"<b>{_esc(n)}</b>", _small(f"{op} backward", "#4c1d95")]
        parent.node(self.ids[n], label="<" + "<br/>".join(rows) + ">", fillcolor="#f1ebff",
                    color=GRAD)

    def _pgrad_node(self, parent, key):
        shape = "×".join(map(str, self.program.params[key].spec.shape))
        label = f"<<b>∂{_esc(key)}</b><br/>{_small(shape, '#6b4a12')}>"
        parent.node(self.pgrads[key][1], label=label, shape="note", style="filled",
                    fillcolor=PGRAD[0], color=PGRAD[1], fontsize="10")

    # ---------------------------------------------------------------- edges
    def _edges(self):
        g, ids = self.graph, self.ids
        for n in self.forward:
            for src in g.nodes[n]["inputs"]:
                if n in ids and src in ids and self._drawn(n):
                    inside = self.fused and self.group_of.get(n) == self.group_of.get(src) \
                        and n in self.group_of
                    self.g.edge(ids[src], ids[n], **({"penwidth": "2", "color": "#374151"}
                                                     if inside else {}))
        for b in self.back:
            for src in g.predecessors(b):
                sd = g.nodes[src]
                if sd["kind"] in ("grad", "vjp"):
                    # Drawn against the flow (dir=back) so that the layout mirrors the
                    # forward pass: gradients climb beside the layers they belong to.
                    self.g.edge(ids[b], ids[src], dir="back", style="dashed", color=GRAD,
                                penwidth="1.3", arrowtail="normal")
                elif self._drawn(src):
                    self.g.edge(ids[src], ids[b], style="dotted", color=READ,
                                constraint="false", arrowsize="0.5")
            for key in g.nodes[b].get("param_slots", {}).values():
                self.g.edge(ids[b], self.pgrads[key][1], style="dashed", color=PGRAD[1],
                            penwidth="1.2")

    def _drawn(self, n) -> bool:
        return not (self.fused and n in self.program.losses and n not in self.group_of)

    def _ranks(self):
        """vjp:n level with n, its parameter gradients beside it; group labels beside the
        group's top node."""
        for label, top in self.labels:
            with self.g.subgraph() as s:
                s.attr(rank="same")
                s.node(label)
                s.node(top)
        for b in self.back:
            d = self.graph.nodes[b]
            if d["kind"] != "vjp":
                continue
            with self.g.subgraph() as s:
                s.attr(rank="same")
                s.node(self.ids[d["fwd"]])
                s.node(self.ids[b])
                for key in d["param_slots"].values():
                    s.node(self.pgrads[key][1])


def _op_line(d) -> str:
    if d["op"] is None:
        return "input" + ("" if d["dtype"] in (None, "float32") else f" {d['dtype']}")
    attrs = d["op"].summary_attrs(d["attrs"]) if d["kind"] != "loss" else ""
    return d["op"].name + (f"  {attrs}" if attrs else "")


def _shape(d) -> str:
    return show_shape(d["shape"])


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(name))
