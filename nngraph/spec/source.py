"""Read a YAML or JSON spec into plain Python data plus the position of every key and value.

Positions are what make errors point at the user's file: `Source.at(("layers", 3, "units"))`
gives the (line, col) of that value. YAML is composed with PyYAML's safe composer and then
converted by hand, so no tag can run code, aliases are expanded under a budget, and scalars
follow YAML 1.2 (`1e-3` is a number, `no` is a string).
"""
from __future__ import annotations

from ..errors import Reporter
from .positions import MAX_DEPTH, MAX_FILE_BYTES, Source, TooDeep, place, surrogate, too_deep
from .source_json import read_json
from .source_yaml import read_yaml

__all__ = ["Source", "read_text", "from_python"]


def read_text(file: str, text: str, rep: Reporter) -> Source | None:
    """Parse `text` as JSON when the file name ends in .json, else YAML. Errors go to `rep`."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        rep.error((1, 1), "E003", f"spec file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return None
    if file.endswith(".json"):
        return read_json(file, text, rep)
    return read_yaml(file, text, rep)


def from_python(file: str, data, rep: Reporter) -> Source | None:
    """A spec given as Python data, copied as plain data: string keys; lists, numbers,
    strings, booleans and None (tuples become lists, numpy scalars and arrays their values).
    Positions are unknown, so errors say where in the data they are."""
    def walk(v, where, depth):
        if depth >= MAX_DEPTH:
            raise TooDeep(where)
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 330:
            rep.error((1, 1), "E013", f"{place(where)}: an integer of about "
                                      f"{int(v.bit_length() * 0.30103)} digits is too large "
                                      "for any setting")
            return None
        if isinstance(v, str) and surrogate(v):
            rep.error((1, 1), "E012", f"{place(where)}: {surrogate(v)}")
            return None
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str) or surrogate(k):
                    rep.error((1, 1), "E012", f"{place(where)}: mapping keys must be strings "
                                              f"of text, got {type(k).__name__} {k!r:.40}")
                    continue
                out[k] = walk(x, where + (k,), depth + 1)
            return out
        if isinstance(v, (list, tuple)):
            return [walk(x, where + (i,), depth + 1) for i, x in enumerate(v)]
        if type(v).__module__ == "numpy" and hasattr(v, "tolist"):
            return walk(v.tolist(), where, depth)
        rep.error((1, 1), "E012", f"{place(where)}: a spec holds plain data (mappings, lists, "
                                  f"strings, numbers, booleans, null), not {type(v).__name__}")
        return None
    try:
        return Source(file, walk(data, (), 0))
    except TooDeep as e:
        rep.error((1, 1), "E003", f"{place(e.at)}: {too_deep('spec')}")
        return None
