"""Turn an op's scalar rule ('x if x > 0 else alpha * x') into code for a fused loop.

Variables x, y, gy become the loop's locals; attributes become typed constants; every
numeric literal is wrapped in the kernel's float type `_f(...)`, because a bare float
literal in float32 code promotes the whole expression to float64 (NUMBA_NOTES.md).
"""
from __future__ import annotations

import ast
import re

_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)(?![\w.])")


def scalar_code(expr: str, attrs: dict, names: dict) -> str:
    """`names` maps 'x'/'y'/'gy' to the expressions that hold them in the loop."""
    tree = ast.parse(expr, mode="eval")
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    missing = used - set(names) - set(attrs) - {"math"}
    if missing:
        raise ValueError(f"scalar rule {expr!r} uses unknown names {sorted(missing)}")
    out = _NUMBER.sub(r"_f(\1)", expr)

    def name(m):
        word = m.group(0)
        if word in names:
            return f"({names[word]})"
        if word in attrs:
            return f"_f({float(attrs[word])!r})"
        return word
    return re.sub(r"(?<![\w.])[A-Za-z_]\w*", name, out)


def uses(expr: str, var: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == var
               for n in ast.walk(ast.parse(expr, mode="eval")))


def loop_nest(shape_vars, body):
    """Nested loops over `shape_vars` (names of extents), indices i0, i1, ..."""
    lines, indent = [], "    "
    for k, extent in enumerate(shape_vars):
        lines.append(f"{indent}for i{k} in range({extent}):")
        indent += "    "
    return lines + [indent + line for line in body]
