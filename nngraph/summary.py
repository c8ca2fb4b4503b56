"""The layer table that `net.summary()` and `nngraph summary` print.

One row per node in topological order (inputs, layers, losses), then totals. Every count is
per sample: a batch of N costs N times the FLOPs and activation bytes shown. Column widths
come from the content, so long block-instance names (`stage2_3/conv_b`) are never cut.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .metrics import report_keys
from .ops import REGISTRY
from .shapes import show_shape

if TYPE_CHECKING:
    from .graph import Network

COLUMNS = ("name", "op", "output", "params", "trainable", "FLOPs", "activations")
NUMERIC = {"params", "FLOPs", "activations"}       # right-aligned


@dataclass(frozen=True)
class Row:
    """What the table says about one node; the totals are sums over rows."""
    name: str
    op: str
    output: str
    params: int
    trainable_params: int
    flops: int
    activation_bytes: int
    is_loss: bool = False

    @property
    def trainable(self) -> str:
        if self.params == 0:
            return ""
        if self.trainable_params == self.params:
            return "yes"
        return "no" if self.trainable_params == 0 else "partly"


def summary(net: Network, loaded=None) -> str:
    """The network as a plain-text table, with totals underneath.

        >>> print(summary(nngraph.load("specs/lenet5.yaml")))     # doctest: +SKIP
        Network lenet5 (specs/lenet5.yaml)
        ─────────────────────────────────────────────────────────────────────────
        name    op           output     params  trainable    FLOPs  activations
        ─────────────────────────────────────────────────────────────────────────
        image   input        N×1×28×28                                  3,136 B
        c1      conv2d+relu  N×6×24×24     156  yes        176,256     13,824 B
        ...
        Parameters              44,426   trainable 44,426   non-trainable 0
        Parameter bytes         177,704 B (173.5 KiB, float32)
        FLOPs per sample        572,444 (572.44 KFLOPs, forward)
        Activations per sample  27,424 B (26.8 KiB)
        N is the batch size; FLOPs and activations are per sample.

    Bytes are counted in the network's dtypes: a float64 model's `model.net.summary()`
    counts 8 bytes a float (see Network.with_float_dtype).

    loaded: what starting from another model's parameters does (nngraph.weights.Loaded):
    a column `weights` then says, per layer with parameters, whether they are loaded from
    that file, skipped, or initial values, and a line under the totals names the file.
    """
    rows = rows_of(net)
    columns = COLUMNS + (("weights",) if loaded is not None else ())
    cells = [_cells(r) + ([_origin(r, loaded)] if loaded is not None else []) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(columns)]
    table = [_line(columns, widths, columns)] + [_line(c, widths, columns) for c in cells]
    rule = "─" * max(map(len, table))
    title = f"Network {net.name}"
    if not net.file.startswith("<"):          # '<string>' and '<dict>' name no file
        title += f" ({net.file})"
    if net.description:
        title += f": {net.description.strip()}"
    totals = _totals(rows, state_size(net), net.float_dtype)
    if loaded is not None:
        totals.append(f"Weights                 {loaded.line()}")
    note = "N is the batch size; FLOPs and activations are per sample."
    return "\n".join([title, rule, table[0], rule, *table[1:], rule, *totals, note,
                      *_losses(net), ""])


def _losses(net: Network) -> list[str]:
    """What each loss computes, how they add up, and what training reports."""
    if not net.losses:
        return []
    parts, lines = [], []
    for name in net.losses:
        d = net.node(name)
        a = d["attrs"]
        parts.append(f"{a['weight']:g} × {name}")
        batch = "mean over the batch" if a.get("reduction", "mean") == "mean" else \
            "summed over the batch"
        doc = d["op"].doc
        lines.append((name, f"{d['op'].name}({', '.join(d['inputs'])})",
                      doc if "over the batch" in doc else f"{doc}; {batch}"))
    width = [max(len(line[i]) for line in lines) for i in range(2)]
    out = ["", f"Losses: total = {' + '.join(parts)}" + (" + regularization"
                                                         if _regularized(net) else "")]
    out += [f"  {n.ljust(width[0])}  {call.ljust(width[1])}  {what}" for n, call, what in lines]
    out.append(f"Reports: {', '.join(report_keys(net))} (and val_ forms on validation data)")
    return out


def _regularized(net: Network) -> bool:
    return any((net.node(n)["attrs"] or {}).get("regularizer") for n in net.layers())


def rows_of(net: Network) -> list[Row]:
    """One Row per node, in `net.order()`."""
    params = net.param_table()
    rows = []
    for name in net.order():
        d = net.node(name)
        mine = [p for p in params.values() if p.layer == name]
        count = sum(math.prod(p.spec.shape) for p in mine)
        trainable = sum(math.prod(p.spec.shape) for p in mine if p.trainable)
        is_loss = d["kind"] == "loss"
        rows.append(Row(name, op_label(d), "scalar" if is_loss else show_shape(d["shape"]),
                        count, trainable, node_flops(net, name),
                        math.prod(d["shape"]) * np.dtype(d["dtype"] or "float32").itemsize,
                        is_loss))
    return rows


def op_label(d: dict) -> str:
    """'conv2d+relu' for a node's data; 'input' for graph inputs."""
    if d["op"] is None:
        return "input"
    act = d.get("activation")
    return d["op"].name + (f"+{act[0]}" if act else "")


def node_flops(net: Network, name: str) -> int:
    """Forward FLOPs per sample of one node, its fused activation included."""
    d = net.node(name)
    op = d["op"]
    if op is None:
        return 0
    in_shapes = [net.node(i)["shape"] for i in d["inputs"]]
    # The node's stored shape is after the activation; the op's own rule gives the shape
    # before it, which is what the op's FLOP count is defined on.
    before = tuple(op.shape(d["attrs"], in_shapes))
    total = op.flops(d["attrs"], in_shapes, before)
    if d.get("activation"):
        act_name, act_attrs = d["activation"]
        total += REGISTRY[act_name].flops(act_attrs, [before], tuple(d["shape"]))
    return int(total)


def _cells(r: Row) -> list[str]:
    # Blank rather than 0 where a number cannot apply: an input computes nothing and
    # owns nothing; a loss is one value per batch, not a per-sample activation.
    is_input = r.op == "input"
    return [r.name, r.op, r.output,
            "" if is_input or (r.is_loss and not r.params) else f"{r.params:,}",
            r.trainable,
            "" if is_input else f"{r.flops:,}",
            "" if r.is_loss else f"{r.activation_bytes:,} B"]


def _origin(r: Row, loaded) -> str:
    """Where a layer's parameters come from, for the `weights` column."""
    if not r.params:
        return ""
    return ("loaded" if r.name in loaded.loaded else
            "skipped" if r.name in loaded.skipped else "initial")


def _line(cells, widths, columns=COLUMNS) -> str:
    parts = [c.rjust(w) if h in NUMERIC else c.ljust(w)
             for c, w, h in zip(cells, widths, columns)]
    return "  ".join(parts).rstrip()


def _totals(rows: list[Row], state: int, dtype: str = "float32") -> list[str]:
    total = sum(r.params for r in rows)
    size = total * np.dtype(dtype).itemsize
    trainable = sum(r.trainable_params for r in rows)
    flops = sum(r.flops for r in rows)
    act = sum(r.activation_bytes for r in rows if not r.is_loss)
    lines = [
        ("Parameters",
         f"{total:,}   trainable {trainable:,}   non-trainable {total - trainable:,}"),
        ("Parameter bytes", f"{size:,} B{_unit(size, human_bytes, dtype)}"),
    ]
    if state:
        # Running statistics (batchnorm) are saved with the model but are not parameters:
        # no gradient, no optimizer. Keras counts them as non-trainable; say so apart.
        lines.append(("State", f"{state:,} values (running statistics, not trained)"))
    lines += [
        ("FLOPs per sample", f"{flops:,}{_unit(flops, human_flops, 'forward')}"),
        ("Activations per sample", f"{act:,} B{_unit(act, human_bytes)}"),
    ]
    width = max(len(k) for k, _ in lines)
    return [f"{k.ljust(width)}  {v}" for k, v in lines]


def _unit(n: int, human, note: str = "") -> str:
    """' (173.5 KiB, float32)'; the human form only where it says more than the number."""
    shown = [human(n)] if human(n).split()[0] != f"{n:,}" else []
    parts = shown + ([note] if note else [])
    return f" ({', '.join(parts)})" if parts else ""


def state_size(net: Network) -> int:
    """Values of non-trainable persistent state (batchnorm running mean and variance)."""
    return sum(math.prod(s.shape) for n in net.order()
               for s in (net.node(n).get("state") or {}).values())


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; powers of 1024, as memory is sized.

        >>> human_bytes(177704)
        '173.5 KiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_flops(n: float) -> str:
    """2_300_000 -> '2.30 MFLOPs'; powers of 1000, as compute is quoted.

        >>> human_flops(2_300_000)
        '2.30 MFLOPs'
    """
    for unit in ("", "K", "M", "G"):
        if abs(n) < 1000 or unit == "G":
            return f"{n:,.0f} FLOPs" if not unit else f"{n:,.2f} {unit}FLOPs"
        n /= 1000
    raise AssertionError("unreachable")
