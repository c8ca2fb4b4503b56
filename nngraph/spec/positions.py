"""What the spec readers share: `Source`, the parsed data with the position of every key
and value, the limits a spec file is held to, and how a place in the data is named."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_NODES = 200_000          # after alias expansion; a "billion laughs" file stops here quickly
MAX_DEPTH = 32               # nesting levels; a spec needs about 10 (a conv literal in a block)
MAX_INT_DIGITS = 100         # Python refuses to parse past 4,300; no spec needs a tenth of it

Path = tuple


@dataclass
class Source:
    file: str
    data: Any
    value_pos: dict = field(default_factory=dict)
    key_pos: dict = field(default_factory=dict)

    def at(self, path: Path, key: bool = False) -> tuple[int, int]:
        """Position of the value at `path` (or of its key), else of the nearest enclosing one."""
        path = tuple(path)
        while True:
            table = self.key_pos if key else self.value_pos
            if path in table:
                return table[path]
            if key and path in self.value_pos:
                return self.value_pos[path]
            if not path:
                return (1, 1)
            path = path[:-1]
            key = False


class TooLarge(Exception):
    pass


class TooDeep(Exception):
    def __init__(self, at):
        self.at = at


def too_deep(what: str = "document") -> str:
    return f"the {what} is nested more than {MAX_DEPTH} levels deep"


def surrogate(s: str) -> str:
    """What is wrong with a string that a \\ud800 escape made into something not text
    (no file, terminal or message can hold it), else ''."""
    try:
        s.encode("utf-8")
        return ""
    except UnicodeEncodeError as e:
        return f"the string holds {s[e.start]!r}, half of a surrogate pair, which is not text"


def place(path) -> str:
    """('layers', 0, 'units') -> 'layers[0].units'."""
    out = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return out or "the spec"


def too_long(digits: str) -> str:
    return f"an integer of {len(digits.lstrip('+-'))} digits is too large for any setting"
