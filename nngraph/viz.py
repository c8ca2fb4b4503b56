"""Graph pictures: a network drawn with graphviz, to .svg, .png or .dot.

Each node shows its name, op, key attributes and parameter shapes; each edge the tensor it
carries (`N×6×12×12`). Block instances are drawn as (nested) clusters. An input that only
losses read (a label, a target: `Network.label_inputs`) is drawn apart from the feature
inputs, and every input's edge into a loss is dashed: an autoencoder's `image` is a feature
input whose edge into the loss is its target. Without graphviz's `dot` program the DOT
source is still written, so a picture is one command away.
"""
from __future__ import annotations

import os
import re
import shutil
from typing import TYPE_CHECKING

import graphviz

from .ops import LOSS_ATTRS
from .shapes import show_shape
from .summary import op_label
from .viz_style import (CLUSTER_FILLS, FONT, RANKDIRS, STYLE, TARGET_EDGE, esc, heading,
                        input_style, is_target_edge, node_style, small, target_keys)

if TYPE_CHECKING:
    from .graph import Network

FORMATS = ("svg", "png", "dot")

DOT_MISSING = (
    "graphviz's `dot` program was not found, so {wanted} could not be drawn.\n"
    "The graph was written as DOT source to {dot} instead.\n"
    "To draw pictures, install graphviz and run the command again:\n"
    "    Debian/Ubuntu:  sudo apt-get install graphviz\n"
    "    macOS:          brew install graphviz\n"
    "    conda:          conda install -c conda-forge graphviz\n"
    "or render the DOT source by hand:\n"
    "    dot -Tsvg {dot} -o picture.svg\n"
    "    dot -Tpng {dot} -o picture.png"
)


def render(net: Network, path: str, rankdir: str = "TB", fused: bool = False,
           backward: bool = False, backend: str = "cpu") -> str:
    """Draw `net` to `path` (.svg, .png or .dot, by the suffix); returns the path written.
    With `fused` or `backward`, draws the lowered program instead (see viz_program).

        >>> render(nngraph.load("specs/lenet5.yaml"), "lenet5.svg")     # doctest: +SKIP
        'lenet5.svg'

    Without graphviz's `dot` program, the DOT source goes beside `path` (lenet5.dot) and that
    path is returned; `DOT_MISSING.format(dot=..., wanted=...)` tells the user what to do.
    """
    fmt = _format_of(path)
    if fused or backward:                    # the lowered program, not the spec's layers
        from . import viz_program
        dot = viz_program.to_dot(net, rankdir, fused=fused, backward=backward, backend=backend)
    else:
        dot = to_dot(net, rankdir)
    if fmt == "png":
        dot.graph_attr["dpi"] = "144"        # the default 96 makes 9-point text blur
    if fmt == "dot":
        return _write(path, dot.source.encode())
    if shutil.which("dot") is not None:
        try:
            return _write(path, dot.pipe(format=fmt))
        except graphviz.ExecutableNotFound:
            pass
    return _write(os.path.splitext(path)[0] + ".dot", dot.source.encode())


def to_dot(net: Network, rankdir: str = "TB") -> graphviz.Digraph:
    """The network as a graphviz Digraph (`.source` is the DOT text).

        >>> print(to_dot(net, "LR").source)          # doctest: +SKIP
        digraph lenet5 { ...
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    title = f"<b>{esc(net.name)}  ·  {net.num_params:,} parameters</b>"
    targets = set(net.label_inputs)
    has_target = any(is_target_edge(net.node(i)["kind"], "loss") for l in net.losses
                     for i in net.node(l)["inputs"])
    g = graphviz.Digraph(net.name, graph_attr={
        "rankdir": rankdir, "label": heading(title, target_keys(targets) if has_target else []),
        "labelloc": "t", "fontname": FONT, "fontsize": "18", "nodesep": "0.35",
        "ranksep": "0.45", "pad": "0.3", "bgcolor": "white", "newrank": "true",
        "ordering": "in",                    # merge inputs left to right as written
    }, node_attr={
        "shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "11",
        "margin": "0.14,0.06", "penwidth": "1.2",
    }, edge_attr={
        "fontname": FONT, "fontsize": "9", "fontcolor": "#4b5563", "color": "#6b7280",
        "arrowsize": "0.7",
    })
    # Node ids are n0, n1, ...: layer names may hold ':' which DOT would read as a port.
    ids = {name: f"n{i}" for i, name in enumerate(net.order())}
    params = net.param_table()
    _draw_clusters(g, net, ids, params, targets)
    for name in net.order():
        for src in net.node(name)["inputs"]:
            target = is_target_edge(net.node(src)["kind"], net.node(name)["kind"])
            g.edge(ids[src], ids[name], label=_edge_label(net, src),
                   **(TARGET_EDGE if target else {}))
    return g


# ------------------------------------------------------------------------------ nodes

def _node(g: graphviz.Digraph, net: Network, name: str, node_id: str, params: dict,
          targets: set):
    d = net.node(name)
    target = name in targets
    fill, border = STYLE[node_style(d["kind"], d["op"], d.get("params"), target)]
    rows = [f"<b>{esc(name)}</b>", small("target input" if target else op_label(d),
                                           "#374151")]
    if d["op"] is not None:
        attrs = " ".join(filter(None, [d["op"].summary_attrs(d["attrs"], d.get("attr_paths", ())),
                                       _loss_attrs(d)]))
        if attrs:
            rows.append(small(re.sub(r"(?<=\d)x(?=\d)", "×", attrs), "#4b5563"))
    else:
        rows.append(small(show_shape(d["shape"]) + ("" if d["dtype"] == "float32"
                                                     else f"  {d['dtype']}"), "#4b5563"))
    mine = [p for p in params.values() if p.layer == name]
    if mine:
        shapes = "  ".join(f"{p.name} {'×'.join(map(str, p.spec.shape))}" for p in mine)
        frozen = not any(p.trainable for p in mine)
        rows.append(small(shapes + ("  (frozen)" if frozen else ""), "#6b4a12"))
    extra = {}
    if name in net.outputs:
        extra["penwidth"] = "2.4"            # what predict() returns stands out
    if d["kind"] == "input":
        extra.update(input_style(target))
    if d["kind"] == "loss":
        extra["style"] = "filled"            # square corners: the ends of the graph
    g.node(node_id, label="<" + "<br/>".join(rows) + ">", fillcolor=fill, color=border,
           **extra)


def _loss_attrs(d: dict) -> str:
    """A loss's weight and reduction where they differ from the defaults or the spec names
    them: 'weight=0.5'."""
    if d["kind"] != "loss":
        return ""
    return " ".join(f"{at.name}={d['attrs'][at.name]:g}" if isinstance(d["attrs"][at.name], float)
                    else f"{at.name}={d['attrs'][at.name]}"
                    for at in LOSS_ATTRS if d["attrs"].get(at.name, at.default) != at.default
                    or at.name in d.get("attr_paths", ()))


def _edge_label(net: Network, src: str) -> str:
    d = net.node(src)
    shape = show_shape(d["shape"])
    # Padding keeps the label off the line it sits beside.
    return f"  {shape}  " if d["dtype"] in (None, "float32") else f"  {shape} {d['dtype']}  "


# ------------------------------------------------------------------------------ clusters

def _draw_clusters(g: graphviz.Digraph, net: Network, ids: dict, params: dict,
                   targets: set):
    """Nodes go into nested subgraphs following their `cluster` tuple, outermost first."""
    tree: dict = {}                          # instance -> {"nodes": [...], "children": {...}}
    top = []
    for name in net.order():
        path = tuple(net.node(name).get("cluster") or ())
        if not path:
            top.append(name)
            continue
        level = tree
        for inst in path:
            entry = level.setdefault(inst, {"nodes": [], "children": {}})
            level = entry["children"]
        entry["nodes"].append(name)
    for name in top:
        _node(g, net, name, ids[name], params, targets)
    _draw_level(g, net, tree, ids, params, targets, depth=0)


def _draw_level(parent, net, level: dict, ids, params, targets, depth: int):
    for inst, entry in level.items():
        # DOT draws a subgraph as a box only when its name starts with "cluster".
        number = list(net.clusters).index(inst) if inst in net.clusters else id(entry)
        with parent.subgraph(name=f"cluster_{number}") as c:
            block = net.clusters.get(inst, "")
            label = f"<b>{esc(inst)}</b>" + (f"  <i>{esc(block)}</i>" if block else "")
            c.attr(label=f"<{label}>", style="rounded,filled",
                   fillcolor=CLUSTER_FILLS[min(depth, len(CLUSTER_FILLS) - 1)],
                   color="#9ca3af", fontname=FONT, fontsize="11", labeljust="l",
                   margin="10")
            for name in entry["nodes"]:
                _node(c, net, name, ids[name], params, targets)
            _draw_level(c, net, entry["children"], ids, params, targets, depth + 1)


# ------------------------------------------------------------------------------ helpers

def _format_of(path: str) -> str:
    ext = os.path.splitext(str(path))[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"cannot draw to {path!r}: the file name must end in "
                         f"{', '.join('.' + f for f in FORMATS[:-1])} or .{FORMATS[-1]}")
    return ext


def _write(path: str, data: bytes) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path
