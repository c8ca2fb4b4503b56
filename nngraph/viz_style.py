"""What the pictures share: colours, the legend, how inputs, targets and their edges look,
and HTML escaping for graphviz labels (viz.py draws networks, viz_program.py the lowered
program)."""
from __future__ import annotations

import html

RANKDIRS = ("TB", "LR", "BT", "RL")
FONT = "Helvetica,Arial,sans-serif"

# Fill and border colours by what a node is, light enough for black text to stay readable.
STYLE = {
    "input": ("#dbeafe", "#3b82f6"),
    "target": ("#ccfbf1", "#0f766e"),
    "parametric": ("#fde7c7", "#e08a1e"),
    "activation": ("#dcfce7", "#22a05a"),
    "merge": ("#ede4fb", "#8b5cf6"),
    "loss": ("#fde0e0", "#dc4444"),
    "other": ("#eeeff2", "#7b8190"),
}
CLUSTER_FILLS = ("#f7f8fa", "#eef0f4", "#e5e8ee")    # deeper nesting, darker fill
TARGET = STYLE["target"][1]
TARGET_EDGE = {"style": "dashed", "color": TARGET, "fontcolor": TARGET, "penwidth": "1.4"}


def heading(title: str, keys: list, per_row: int = 5) -> str:
    """A picture's title (HTML) over its legend, a grid of (fill, border, style, text) keys.
    A key is a box coloured as what it names (style 'bold': a thick border) with its text
    inside, or, without a fill, an edge: its glyph (the style) before the text."""
    def key(fill, border, style, text):
        text = f'<font point-size="10">{esc(text)}</font>'
        if fill is None:
            glyph = f'<font color="{border}" point-size="10"><b>{esc(style)}</b></font>'
            return f"<td>{glyph} {text}</td>"
        width, style = ("3", "rounded") if style == "bold" else ("1", style)
        return (f'<td bgcolor="{fill}" color="{border}" border="{width}" style="{style}" '
                f'cellpadding="3">{text}</td>')
    # One grid, not a table per row: a row narrower than the widest would be stretched.
    rows = "".join("<tr>" + "".join(key(*k) for k in keys[i:i + per_row]) + "</tr>"
                   for i in range(0, len(keys), per_row))
    legend = (f'<tr><td><table border="0" cellspacing="6">{rows}</table></td></tr>'
              if keys else "")
    return f'<<table border="0" cellspacing="4"><tr><td>{title}</td></tr>{legend}</table>>'


def node_style(kind: str, op, params, target: bool = False) -> str:
    """Which STYLE a node gets from its kind, op and parameters (a spec layer's or a
    program node's): input, target (an input that only losses read: say so with `target`),
    parametric, activation, merge, loss, other."""
    if kind == "input" and target:
        return "target"
    if kind in ("input", "loss"):
        return kind
    if params:
        return "parametric"
    if op.kind in ("activation", "merge"):
        return op.kind
    return "other"


def is_target_edge(src_kind: str, dst_kind: str) -> bool:
    """Is an edge from a node of kind `src_kind` to one of `dst_kind` an input read by a
    loss: the loss's target?"""
    return src_kind == "input" and dst_kind == "loss"


def target_keys(label_inputs) -> list:
    """Legend keys, (fill, border, style, text), for a picture where losses read inputs: the
    target input where there are `label_inputs`, and the target edge (no fill: a glyph)."""
    keys = [(*STYLE["input"], "solid", "feature input")]
    if label_inputs:
        keys.append((*STYLE["target"], "dashed", "target input: read by losses only"))
    return keys + [(None, TARGET, "- - →", "a loss's target")]


def input_style(target: bool) -> dict:
    """Node attributes of an input: square corners (an end of the graph), dashed if a target."""
    return {"style": "filled,dashed" if target else "filled"}


def esc(text: str) -> str:
    return html.escape(str(text), quote=False)


def small(text: str, colour: str) -> str:
    return f'<font point-size="9" color="{colour}">{esc(text)}</font>'
