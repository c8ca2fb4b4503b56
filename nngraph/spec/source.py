"""Read a YAML or JSON spec into plain Python data plus the position of every key and value.

Positions are what make errors point at the user's file: `Source.at(("layers", 3, "units"))`
gives the (line, col) of that value. YAML is composed with PyYAML's safe composer and then
converted by hand, so no tag can run code, aliases are expanded under a budget, and scalars
follow YAML 1.2 (`1e-3` is a number, `no` is a string).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Reporter

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


class _TooLarge(Exception):
    pass


class _TooDeep(Exception):
    def __init__(self, at):
        self.at = at


def _too_deep(what: str = "document") -> str:
    return f"the {what} is nested more than {MAX_DEPTH} levels deep"


class _Composer(yaml.SafeLoader):
    """PyYAML's safe composer, stopped at MAX_DEPTH levels: it recurses once per level, so
    a file of a thousand '[' would otherwise end in a RecursionError."""

    depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooDeep((mark.line + 1, mark.column + 1))
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def read_text(file: str, text: str, rep: Reporter) -> Source | None:
    """Parse `text` as JSON when the file name ends in .json, else YAML. Errors go to `rep`."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        rep.error((1, 1), "E003", f"spec file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return None
    if file.endswith(".json"):
        return _read_json(file, text, rep)
    return _read_yaml(file, text, rep)


def from_python(file: str, data, rep: Reporter) -> Source | None:
    """A spec given as Python data, copied as plain data: string keys; lists, numbers,
    strings, booleans and None (tuples become lists, numpy scalars and arrays their values).
    Positions are unknown, so errors say where in the data they are."""
    def walk(v, where, depth):
        if depth >= MAX_DEPTH:
            raise _TooDeep(where)
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 330:
            rep.error((1, 1), "E013", f"{_where(where)}: an integer of about "
                                      f"{int(v.bit_length() * 0.30103)} digits is too large "
                                      "for any setting")
            return None
        if isinstance(v, str) and _surrogate(v):
            rep.error((1, 1), "E012", f"{_where(where)}: {_surrogate(v)}")
            return None
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str) or _surrogate(k):
                    rep.error((1, 1), "E012", f"{_where(where)}: mapping keys must be strings "
                                              f"of text, got {type(k).__name__} {k!r:.40}")
                    continue
                out[k] = walk(x, where + (k,), depth + 1)
            return out
        if isinstance(v, (list, tuple)):
            return [walk(x, where + (i,), depth + 1) for i, x in enumerate(v)]
        if type(v).__module__ == "numpy" and hasattr(v, "tolist"):
            return walk(v.tolist(), where, depth)
        rep.error((1, 1), "E012", f"{_where(where)}: a spec holds plain data (mappings, lists, "
                                  f"strings, numbers, booleans, null), not {type(v).__name__}")
        return None
    try:
        return Source(file, walk(data, (), 0))
    except _TooDeep as e:
        rep.error((1, 1), "E003", f"{_where(e.at)}: {_too_deep('spec')}")
        return None


def _surrogate(s: str) -> str:
    """What is wrong with a string that a \\ud800 escape made into something not text
    (no file, terminal or message can hold it), else ''."""
    try:
        s.encode("utf-8")
        return ""
    except UnicodeEncodeError as e:
        return f"the string holds {s[e.start]!r}, half of a surrogate pair, which is not text"


def _where(path) -> str:
    """('layers', 0, 'units') -> 'layers[0].units'."""
    out = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return out or "the spec"


# ---------------------------------------------------------------------------------- YAML

_CORE_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("map", "seq", "str", "int", "float", "bool", "null")
}
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")


def _too_long(digits: str) -> str:
    return f"an integer of {len(digits.lstrip('+-'))} digits is too large for any setting"


def _plain_scalar(text: str):
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    return text


def _read_yaml(file: str, text: str, rep: Reporter) -> Source | None:
    loader = None
    try:
        loader = _Composer(text)
        root = loader.get_single_node()
    except _TooDeep as e:
        rep.error(e.at, "E003", _too_deep())
        return None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        rep.error(at, "E001", f"YAML syntax error: {e.problem or e.context}")
        return None
    except yaml.reader.ReaderError as e:            # a character YAML does not allow
        line = text.count("\n", 0, e.position) + 1
        rep.error((line, e.position - text.rfind("\n", 0, e.position)), "E001",
                  f"YAML syntax error: character {chr(e.character)!r} is not allowed in YAML"
                  if isinstance(e.character, int) else f"YAML syntax error: {e.reason}")
        return None
    except yaml.YAMLError as e:
        rep.error((1, 1), "E001", f"YAML error: {e}")
        return None
    finally:
        if loader is not None:
            loader.dispose()
    src = Source(file, None)
    if root is None:
        rep.error((1, 1), "E001", "the spec file is empty")
        return None
    try:
        if _expanded_size(root, {}) > MAX_NODES:
            raise _TooLarge
        src.data = _convert(root, (), src, rep, [MAX_NODES])
    except _TooLarge:
        rep.error(_mark(root), "E003",
                  f"the document expands to more than {MAX_NODES:,} values "
                  "(an alias bomb?); refused before expanding it")
        return None
    except _TooDeep as e:           # aliases can nest deeper than the text does
        rep.error(e.at, "E003", _too_deep("document, with its aliases expanded,"))
        return None
    return src


def _expanded_size(node, memo, depth=0) -> int:
    """Values the node stands for once aliases are expanded; shared nodes counted once each
    time they are referenced, but computed once, so a bomb is measured without expanding it."""
    key = id(node)
    if key not in memo:
        if depth >= MAX_DEPTH:
            raise _TooDeep(_mark(node))
        memo[key] = 0                       # a recursive alias counts as nothing more
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(_expanded_size(k, memo, depth + 1) +
                            _expanded_size(v, memo, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(_expanded_size(v, memo, depth + 1) for v in node.value)
        else:
            total = 1
        memo[key] = min(total, MAX_NODES + 1)
    return memo[key]


def _explicit_tag(node) -> bool:
    mark = node.start_mark
    return mark.buffer is not None and mark.buffer[mark.pointer:mark.pointer + 1] == "!"


def _mark(node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node, path, src: Source, rep: Reporter, budget):
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if len(path) >= MAX_DEPTH:
        raise _TooDeep(_mark(node))
    src.value_pos.setdefault(path, _mark(node))
    if node.tag not in _CORE_TAGS and not (node.tag == "!" and isinstance(node, yaml.ScalarNode)):
        rep.error(_mark(node), "E002",
                  f"YAML tag '{node.tag}' is not allowed: specs hold plain data only")
        return None
    if isinstance(node, yaml.MappingNode):
        out = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                rep.error(_mark(knode), "E012", "mapping keys must be plain strings")
                continue
            key = knode.value
            if _surrogate(key):
                rep.error(_mark(knode), "E001", f"YAML syntax error: {_surrogate(key)}")
                continue
            if key == "<<":
                rep.error(_mark(knode), "E002", "YAML merge keys ('<<') are not supported")
                continue
            if key in out:
                rep.error(_mark(knode), "E022", f"duplicate key '{key}'")
            src.key_pos.setdefault(path + (key,), _mark(knode))
            out[key] = _convert(vnode, path + (key,), src, rep, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, path + (i,), src, rep, budget) for i, v in enumerate(node.value)]
    if node.style is None and not _explicit_tag(node):    # plain scalar: YAML 1.2 rules
        if len(node.value) > MAX_INT_DIGITS and _INT.match(node.value):
            rep.error(_mark(node), "E013", _too_long(node.value))
            return None
        return _plain_scalar(node.value)
    if _surrogate(node.value):
        rep.error(_mark(node), "E001", f"YAML syntax error: {_surrogate(node.value)}")
        return None
    return node.value


# ---------------------------------------------------------------------------------- JSON

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_decoder = json.JSONDecoder()


class _JSONSyntax(Exception):
    def __init__(self, pos: int, msg: str, code: str = "E001"):
        self.pos, self.msg, self.code = pos, msg, code


def _read_json(file: str, text: str, rep: Reporter) -> Source | None:
    src = Source(file, None)
    lines = _LineIndex(text)
    parser = _JSONParser(text, src, lines)
    try:
        i = parser.skip(0)
        src.data, i = parser.value(i, ())
        i = parser.skip(i)
        if i != len(text):
            raise _JSONSyntax(i, "extra data after the JSON document")
    except _JSONSyntax as e:
        rep.error(lines.at(e.pos), e.code,
                  f"JSON syntax error: {e.msg}" if e.code == "E001" else e.msg)
        return None
    for at, key in parser.duplicates:
        rep.error(at, "E022", f"duplicate key '{key}'")
    return src


class _LineIndex:
    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, pos: int) -> tuple[int, int]:
        import bisect
        line = bisect.bisect_right(self.starts, pos) - 1
        return (line + 1, pos - self.starts[line] + 1)


class _JSONParser:
    def __init__(self, text, src, lines):
        self.text, self.src, self.lines, self.duplicates = text, src, lines, []
        self.count = 0

    def skip(self, i):
        return _WS.match(self.text, i).end()

    def value(self, i, path):
        self.count += 1
        if self.count > MAX_NODES:
            raise _JSONSyntax(i, f"the document has more than {MAX_NODES:,} values", "E003")
        if len(path) >= MAX_DEPTH:          # the root is level 1
            raise _JSONSyntax(i, _too_deep(), "E003")
        text = self.text
        self.src.value_pos.setdefault(path, self.lines.at(i))
        if i >= len(text):
            raise _JSONSyntax(i, "unexpected end of file, expected a value")
        c = text[i]
        if c == "{":
            return self.object(i, path)
        if c == "[":
            return self.array(i, path)
        if c == '"':
            return self.string(i)
        m = _NUMBER.match(text, i)
        if m and m.end() > i:
            s = m.group(0)
            if m.group(2) or m.group(3):
                return float(s), m.end()
            if len(s) > MAX_INT_DIGITS:
                raise _JSONSyntax(i, _too_long(s), "E013")
            return int(s), m.end()
        for word, val in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, i):
                return val, i + len(word)
        raise _JSONSyntax(i, f"unexpected character {text[i]!r}, expected a value")

    def string(self, i):
        try:
            s, end = json.decoder.scanstring(self.text, i + 1)
        except json.JSONDecodeError as e:
            raise _JSONSyntax(e.pos, e.msg) from None
        if _surrogate(s):
            raise _JSONSyntax(i, _surrogate(s))
        return s, end

    def object(self, i, path):
        out, i = {}, self.skip(i + 1)
        if self.text.startswith("}", i):
            return out, i + 1
        while True:
            if not self.text.startswith('"', i):
                raise _JSONSyntax(i, "expected a quoted key")
            kat = self.lines.at(i)
            key, i = self.string(i)
            if key in out:
                self.duplicates.append((kat, key))
            self.src.key_pos.setdefault(path + (key,), kat)
            i = self.skip(i)
            if not self.text.startswith(":", i):
                raise _JSONSyntax(i, "expected ':' after the key")
            out[key], i = self.value(self.skip(i + 1), path + (key,))
            i = self.skip(i)
            if self.text.startswith(",", i):
                i = self.skip(i + 1)
                continue
            if self.text.startswith("}", i):
                return out, i + 1
            raise _JSONSyntax(i, "expected ',' or '}'")

    def array(self, i, path):
        out, i = [], self.skip(i + 1)
        if self.text.startswith("]", i):
            return out, i + 1
        while True:
            v, i = self.value(i, path + (len(out),))
            out.append(v)
            i = self.skip(i)
            if self.text.startswith(",", i):
                i = self.skip(i + 1)
                continue
            if self.text.startswith("]", i):
                return out, i + 1
            raise _JSONSyntax(i, "expected ',' or ']'")
