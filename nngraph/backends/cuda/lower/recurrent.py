"""rnn, gru and lstm on the device (kernels/cuda/recurrent.py): one product projects every
step's input, then per step one product with U and one fused gate kernel; the backward runs
one gate-gradient kernel and one product per step in reverse, then the weight gradients as
one product each over all steps and the biases' column sums. What the backward needs
(states, gates) stays in scratch buffers of the arena, as on the CPU."""
from __future__ import annotations

from ...cpu.lower._common import param_or
from ...cpu.lower.recurrent import _GATES, _seq_out
from . import Call, Extern, lowers

_SAVED = {"rnn": ("hs",), "gru": ("hs", "gates", "un"), "lstm": ("hs", "cs", "gates")}
"""What forward keeps for backward, in the kernels' argument order."""


def _sizes(site, n):
    """(steps, features, units, gate columns G*H) of recurrent node n."""
    d = site.node(n)
    steps, features = site.shape(d.inputs[0])
    return steps, features, d.attrs.units, _GATES[d.op.name] * d.attrs.units


def _saved(site, n) -> list:
    """The buffers forward fills for backward (time-major: each step's block contiguous)."""
    steps, _, h, gh = _sizes(site, n)
    shapes = {"hs": (steps + 1, h), "cs": (steps + 1, h), "gates": (steps, gh),
              "un": (steps, h)}
    return [site.scratch(k, shapes[k], layout="time") for k in _SAVED[site.node(n).op.name]]


def _note(site, n) -> str:
    steps, features, h, _ = _sizes(site, n)
    out = "every state" if site.node(n).attrs.return_sequences else "the last state"
    return f"{n}: {steps} steps of {features} feature{'s' * (features != 1)}, {h} units, {out}"


@lowers("rnn", "gru", "lstm", kind="forward",
        calls=("_recurrent.rnn_forward", "_recurrent.gru_forward", "_recurrent.lstm_forward"))
def recurrent_forward(site):
    n = site.group.anchor
    d = site.node(n)
    kind = d.op.name
    steps, _, _, gh = _sizes(site, n)
    args = [site.val(d.inputs[0]), param_or(site, n, "W", "None"), param_or(site, n, "U", "None"),
            param_or(site, n, "b", "None")]
    if kind == "gru":
        args.append(param_or(site, n, "bu", "None"))
    args += [_seq_out(site, n, site.val(n)), site.scratch("xw", (steps, gh)),
             site.scratch("hu", (gh,))] + _saved(site, n)
    return Extern([Call(f"_recurrent.{kind}_forward", args, note=_note(site, n))])


@lowers("rnn", "gru", "lstm", kind="backward",
        calls=("_recurrent.rnn_backward", "_recurrent.gru_backward",
               "_recurrent.lstm_backward"))
def recurrent_backward(site):
    n = site.group.anchor
    d = site.node(n)
    kind = d.op.name
    steps, _, h, gh = _sizes(site, n)
    grads = {p: site.pgrad(k) for p, k in site.param_slots(n).items()}
    args = [site.val(d.inputs[0]), param_or(site, n, "W", "None"), param_or(site, n, "U", "None")]
    args += _saved(site, n) + [_seq_out(site, n, site.grad(n)), site.input_grad(n, 0) or "None"]
    args += [grads.get(p, "None") for p in ("W", "U", "b", "bu")[:4 if kind == "gru" else 3]]
    args += [site.scratch("d_in", (steps, gh)), site.scratch("d_rec", (steps, gh), layout="time"),
             site.scratch("gh", (h,))]
    if kind == "lstm":
        args.append(site.scratch("gc", (h,)))
    return Extern([Call(f"_recurrent.{kind}_backward", args, note=_note(site, n))])
