"""Per-op lowerings of the CPU backend: what each op's fused group becomes in the generated
module. One file here per op (or family of ops) registers its rules:

    @lowers("dense", "forward", calls=())
    def dense_forward(site) -> Kernel | Extern | View | None: ...

A rule reads the group through its `site` (buffer names, shapes, attributes; see
site.Site) and returns one of three things, turned into source only when the module is
written:

    Kernel  a generated njit kernel (its arguments and body) and the driver's call of it
    Extern  calls of hand-written kernels of kernels/cpu (module.function), with the
            generated helpers they need (an activation's epilogue, an unrolled pooling)
    View    no code: the group's output is a view of its input (flatten, reshape)

or None, and the group runs the op's numpy reference rule from the driver (correct, slow):
an op works on the CPU backend the day it is registered and gets fast when it gets a file
here. `calls` names the hand-written kernels a rule may call, so that a test can check that
every hand-written kernel is reachable; REFERENCE_ONLY names the ops that have no rule on
purpose, and why.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from ....ops.base import Fusion

KINDS = ("forward", "backward", "loss")


@dataclass
class Kernel:
    """A generated kernel: `args` and `body` its source, `call` the driver's arguments (buffer
    names and literals), `returns` whether its result counts (a loss, a non-finite note)."""
    args: list
    body: list
    call: list
    returns: bool = False


@dataclass
class Call:
    """One call of a hand-written kernel ('_conv.conv2d_forward': kernels/cpu/conv.py,
    see kernel_modules.py) or of a generated helper (a bare name), and a note for the
    reader."""
    function: str
    args: list
    note: str = ""

    def source(self) -> str:
        return f"{self.function}({', '.join(map(str, self.args))})" + \
            (f"   # {self.note}" if self.note else "")


@dataclass
class Extern:
    """Calls of hand-written kernels, in order, and {name: source} of the generated helpers
    among them."""
    calls: list
    helpers: dict = field(default_factory=dict)


@dataclass
class View:
    """Buffer `name` is a view of buffer `base`: nothing runs."""
    name: str
    base: str


@dataclass(frozen=True)
class Rule:
    op: str
    kind: str                    # forward | backward | loss
    emit: Callable               # site -> Kernel | Extern | View | None
    calls: tuple = ()            # hand-written kernels it may call, 'conv.conv2d_forward'


RULES: dict = {}                 # (op name, kind) -> Rule; op "*elementwise": any scalar op

REFERENCE_ONLY: dict = {}
"""Ops that run their numpy rule on purpose, with the reason."""


def lowers(*ops: str, kind: str, calls: tuple = ()):
    """Register the decorated function as the `kind` rule of each op in `ops`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def register(emit):
        for op in ops:
            if (op, kind) in RULES:
                raise ValueError(f"two {kind} lowerings of {op}")
            RULES[op, kind] = Rule(op, kind, emit, tuple(calls))
        return emit
    return register


def rule_for(site) -> Rule | None:
    """The rule of the group at `site`, or None to run the reference rule."""
    g = site.group
    op = site.node(g.anchor).op
    elementwise = g.kind != "loss" and op.fusion == Fusion.ELEMWISE and op.scalar
    rule = _find(op.name, g.kind, elementwise)
    if rule is None and not _found:
        _discover()                 # a rule that lives in a file named otherwise
        rule = _find(op.name, g.kind, elementwise)
    return rule


def _find(op: str, kind: str, elementwise: bool) -> Rule | None:
    """The rule of `op`, importing only the files named after it (and elementwise.py for
    an elementwise op): a network's code generation imports the lowerings of its own ops,
    not all of them (each import costs about a millisecond)."""
    _load(op)
    rule = RULES.get((op, kind))
    if rule is None and elementwise:
        _load("elementwise")
        rule = RULES.get(("*elementwise", kind))
    return rule


_found = False
_names: set = set()


def _load(name: str) -> None:
    if not _names:
        _names.update(m.name for m in pkgutil.iter_modules(__path__))
    if name in _names and not name.startswith("_"):
        importlib.import_module(f"{__name__}.{name}")


def _discover() -> None:
    """Import every module of this package once: each registers its rules."""
    global _found
    if not _found:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _found = True


def rules() -> dict:
    """Every registered rule, {(op, kind): Rule}."""
    _discover()
    return dict(RULES)
