"""JSON specs, parsed by hand so that every key and value keeps its line and column."""
from __future__ import annotations

import json
import re

from ..errors import Reporter
from .positions import MAX_DEPTH, MAX_INT_DIGITS, MAX_NODES, Source, surrogate, too_deep, too_long


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_decoder = json.JSONDecoder()


class _JSONSyntax(Exception):
    def __init__(self, pos: int, msg: str, code: str = "E001"):
        self.pos, self.msg, self.code = pos, msg, code


def read_json(file: str, text: str, rep: Reporter) -> Source | None:
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
            raise _JSONSyntax(i, too_deep(), "E003")
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
                raise _JSONSyntax(i, too_long(s), "E013")
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
        if surrogate(s):
            raise _JSONSyntax(i, surrogate(s))
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
