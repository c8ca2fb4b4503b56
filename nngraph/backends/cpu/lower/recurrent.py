"""rnn, lstm and gru on the hand-written kernels of kernels/cpu/recurrent.py, which keep what
the backward needs (inputs by time, states, gates) in scratch buffers of the arena."""
from __future__ import annotations

from . import Call, Extern, lowers
from ._common import param_or

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _seq_out(site, n, name):
    """The kernels take y and gy as (N, T, H), or (N, 1, H) for the last state only."""
    return name if site.node(n).attrs.return_sequences else \
        f"{name}.reshape({name}.shape[0], 1, {name}.shape[1])"


def _rec_saved(site, n):
    d = site.node(n)
    steps, features = site.shape(d.inputs[0])
    h = d.attrs.units
    gh = _GATES[d.op.name] * h
    saved = {"xt": site.scratch("xt", (steps, features), layout="time"),
             "hs": site.scratch("hs", (steps + 1, h), layout="time")}
    if d.op.name == "lstm":
        saved["cs"] = site.scratch("cs", (steps + 1, h), layout="time")
        saved["tcs"] = site.scratch("tcs", (steps, h), layout="time")
    if d.op.name in ("lstm", "gru"):
        saved["gates"] = site.scratch("gates", (steps, gh), layout="time")
    if d.op.name == "gru":
        saved["un"] = site.scratch("un", (steps, h), layout="time")
    return saved, steps, h, gh


_SAVED = {"rnn": ("xt", "hs"), "lstm": ("xt", "hs", "cs", "tcs", "gates"),
          "gru": ("xt", "hs", "gates", "un")}


def _saved_args(saved, kind):
    """What forward keeps for backward, in the kernels' argument order."""
    return [saved[k] for k in _SAVED[kind]]


@lowers("rnn", "lstm", "gru", kind="forward",
        calls=("_recurrent.rnn_forward", "_recurrent.lstm_forward", "_recurrent.gru_forward"))
def recurrent_forward(site):
    n = site.group.anchor
    d = site.node(n)
    kind = d.op.name
    saved, steps, h, gh = _rec_saved(site, n)
    args = [site.val(d.inputs[0]), param_or(site, n, "W", ""), param_or(site, n, "U", ""),
            param_or(site, n, "b", "_none1")]
    if kind == "gru":
        args.append(param_or(site, n, "bu", "_none1"))
    args.append(_seq_out(site, n, site.val(n)))
    if kind == "gru":
        args.append(site.scratch("xw", (steps, gh), layout="time"))
    args += _saved_args(saved, kind)
    return Extern([Call(f"_recurrent.{kind}_forward", args)])


@lowers("rnn", "lstm", "gru", kind="backward",
        calls=("_recurrent.rnn_backward", "_recurrent.lstm_backward", "_recurrent.gru_backward"))
def recurrent_backward(site):
    n = site.group.anchor
    d = site.node(n)
    kind = d.op.name
    saved, steps, h, gh = _rec_saved(site, n)
    slots = site.param_slots(n)
    grad = {p: site.pgrad(k) for p, k in slots.items()}
    gx = site.input_grad(n, 0) or "_none3"
    args = [param_or(site, n, "W", ""), param_or(site, n, "U", "")] + _saved_args(saved, kind)
    args += [_seq_out(site, n, site.grad(n)), gx, grad.get("W", "_none2"),
             grad.get("U", "_none2"), grad.get("b", "_none1")]
    if kind == "gru":
        args.append(grad.get("bu", "_none1"))
    args.append(site.scratch("d", (steps, gh), layout="time"))
    if kind == "gru":
        args.append(site.scratch("dx", (steps, gh), layout="time"))
    args.append(site.scratch("gh", (h,)))
    if kind == "lstm":
        args.append(site.scratch("gc", (h,)))
    args.append(site.scratch("ut", (gh, h), layout="fixed"))
    args.append(site.scratch("gxt", (steps, site.shape(d.inputs[0])[1]), layout="time")
                if gx != "_none3" else "_none3")
    if "W" not in grad or "U" not in grad:
        return None                      # a partly frozen recurrent layer: reference rule
    return Extern([Call(f"_recurrent.{kind}_backward", args)])
