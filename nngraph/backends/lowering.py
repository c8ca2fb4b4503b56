"""What every compiling backend's per-op lowerings share: the objects a rule returns and the
registry that finds a group's rule.

A backend keeps its lowerings in a package of its own, one file per op (or family of ops)
named after it (`backends/cpu/lower/`), and makes one Registry over that package. A rule
reads the group through its site (buffer names, shapes, attributes) and returns one of:

    Kernel  a generated kernel (its arguments and body) and the driver's call of it
    Extern  calls of hand-written kernels (`_module.function`), with the generated helpers
            they need
    View    no code: the group's output is a view of its input (flatten, reshape)

or None, and the group runs the op's numpy reference rule from the driver (correct, slow).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from ..ops.base import Fusion

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
    """One call of a hand-written kernel ('_conv.conv2d_forward': kernels/cpu/conv.py, see
    backends/cpu/kernel_modules.py) or of a generated helper (a bare name), and a note for
    the reader."""
    function: str
    args: list
    note: str = ""
    returns: bool = False        # its result is the group's loss (a loss group's last call)

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
    calls: tuple = ()            # hand-written kernels it may call, '_conv.conv2d_forward'


class Registry:
    """The rules of one backend's lowering package (`package`, its `path`), registered by
    `lowers` and found by op: only the files named after a network's ops are imported
    (each import costs about a millisecond), and every file only for an op found in none.
    A scalar elementwise op without a rule of its own takes the rule of op '*elementwise'
    (from elementwise.py)."""

    def __init__(self, package: str, path):
        self.package, self.path = package, path
        self.rules: dict = {}        # (op name, kind) -> Rule
        self.found = False
        self.names: set = set()

    def lowers(self, *ops: str, kind: str, calls: tuple = ()):
        """Register the decorated function as the `kind` rule of each op in `ops`."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

        def register(emit):
            for op in ops:
                if (op, kind) in self.rules:
                    raise ValueError(f"two {kind} lowerings of {op}")
                self.rules[op, kind] = Rule(op, kind, emit, tuple(calls))
            return emit
        return register

    def rule_for(self, site) -> Rule | None:
        """The rule of the group at `site`, or None to run the reference rule."""
        g = site.group
        op = site.node(g.anchor).op
        elementwise = g.kind != "loss" and op.fusion == Fusion.ELEMWISE and op.scalar
        rule = self._find(op.name, g.kind, elementwise)
        if rule is None and not self.found:
            self._discover()            # a rule that lives in a file named otherwise
            rule = self._find(op.name, g.kind, elementwise)
        return rule

    def all(self) -> dict:
        """Every registered rule, {(op, kind): Rule}."""
        self._discover()
        return dict(self.rules)

    def _find(self, op: str, kind: str, elementwise: bool) -> Rule | None:
        self._load(op)
        rule = self.rules.get((op, kind))
        if rule is None and elementwise:
            self._load("elementwise")
            rule = self.rules.get(("*elementwise", kind))
        return rule

    def _load(self, name: str) -> None:
        if not self.names:
            self.names.update(m.name for m in pkgutil.iter_modules(self.path))
        if name in self.names and not name.startswith("_"):
            importlib.import_module(f"{self.package}.{name}")

    def _discover(self) -> None:
        """Import every module of the package once: each registers its rules."""
        if not self.found:
            for info in sorted(pkgutil.iter_modules(self.path), key=lambda m: m.name):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")
            self.found = True
