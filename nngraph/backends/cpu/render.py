"""Driver lines as objects, turned into source only once the kernels have their final names.

A lowering's Kernel or Extern becomes Lines (codegen.py); the module's drivers render them
with keyword arguments from the first argument that is not a buffer on, so a reader sees
`relu=True, stride_h=1` rather than a run of literals. The same Lines render positionally
for the drivers that call compiled entry points (fast_path.py), which take no keywords.
"""
from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache

from . import kernel_modules


_NAME = re.compile(r"\w*")       # the name an argument starts with: a buffer's, or not


@dataclass
class Line:
    """One line of a driver: a call (`function`, `args` in the callee's order, `params` the
    callee's parameter names, or None to pass them by position) or, without a function,
    `text` as it is (a comment, a reference rule's call)."""
    function: str | None = None
    args: list = field(default_factory=list)
    params: tuple | None = None
    target: str = ""            # what its result adds to: 'loss += 1.0 * ', 'unfit += '
    note: str = ""
    text: str = ""

    @property
    def is_call(self) -> bool:
        return self.function is not None or not self.text.startswith("#")

    def source(self, names: dict, buffers, keywords: bool = True, width: int = 10 ** 6) -> str:
        """The line's source, kernels under their final `names`, its arguments wrapped
        under the opening parenthesis past `width` columns; with `keywords`, each
        argument from the first that is not one of `buffers` (or a view of one,
        `v_x[:, :, None]`) on is passed by name."""
        if self.function is None:
            return self.text
        parts, named = [], False
        for i, arg in enumerate(map(str, self.args)):
            named = named or (keywords and self.params is not None
                              and _NAME.match(arg)[0] not in buffers)
            parts.append(f"{self.params[i]}={arg}" if named else arg)
        head = f"{self.target}{names.get(self.function, self.function)}("
        rows = textwrap.wrap(", ".join(parts) + ")", width - len(head), break_long_words=False,
                             break_on_hyphens=False) or [")"]
        rows = [head + rows[0]] + [" " * len(head) + row for row in rows[1:]]
        return "\n".join(rows) + (f"   # {self.note}" if self.note else "")


def generated_params(source: str) -> tuple:
    """The parameter names of the one function that generated `source` defines."""
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef))
    return tuple(a.arg for a in fn.args.args)


@lru_cache(maxsize=None)
def kernel_params(function: str, package: str = kernel_modules.PACKAGE) -> tuple | None:
    """The parameter names of hand-written kernel `function` ('_conv.conv2d_forward') of
    `package`; None if there is no such kernel."""
    fn = kernel_modules.function(function, package)
    if fn is None:
        return None
    return tuple(inspect.signature(getattr(fn, "py_func", fn)).parameters)
