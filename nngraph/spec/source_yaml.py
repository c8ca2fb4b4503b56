"""YAML specs: composed with PyYAML's safe composer and converted by hand, so no tag can run
code, aliases are expanded under a budget, nesting is bounded, and scalars follow YAML 1.2
(`1e-3` is a number, `no` is a string)."""
from __future__ import annotations

import math
import re

import yaml

from ..errors import Reporter
from .positions import (MAX_DEPTH, MAX_INT_DIGITS, MAX_NODES, Source, TooDeep, TooLarge,
                        surrogate, too_deep, too_long)


class _Composer(yaml.SafeLoader):
    """PyYAML's safe composer, stopped at MAX_DEPTH levels: it recurses once per level, so
    a file of a thousand '[' would otherwise end in a RecursionError."""

    depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise TooDeep((mark.line + 1, mark.column + 1))
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_CORE_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("map", "seq", "str", "int", "float", "bool", "null")
}
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")


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


def read_yaml(file: str, text: str, rep: Reporter) -> Source | None:
    loader = None
    try:
        loader = _Composer(text)
        root = loader.get_single_node()
    except TooDeep as e:
        rep.error(e.at, "E003", too_deep())
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
            raise TooLarge
        src.data = _convert(root, (), src, rep, [MAX_NODES])
    except TooLarge:
        rep.error(_mark(root), "E003",
                  f"the document expands to more than {MAX_NODES:,} values "
                  "(an alias bomb?); refused before expanding it")
        return None
    except TooDeep as e:           # aliases can nest deeper than the text does
        rep.error(e.at, "E003", too_deep("document, with its aliases expanded,"))
        return None
    return src


def _expanded_size(node, memo, depth=0) -> int:
    """Values the node stands for once aliases are expanded; shared nodes counted once each
    time they are referenced, but computed once, so a bomb is measured without expanding it."""
    key = id(node)
    if key not in memo:
        if depth >= MAX_DEPTH:
            raise TooDeep(_mark(node))
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
        raise TooLarge
    if len(path) >= MAX_DEPTH:
        raise TooDeep(_mark(node))
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
            if surrogate(key):
                rep.error(_mark(knode), "E001", f"YAML syntax error: {surrogate(key)}")
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
            rep.error(_mark(node), "E013", too_long(node.value))
            return None
        return _plain_scalar(node.value)
    if surrogate(node.value):
        rep.error(_mark(node), "E001", f"YAML syntax error: {surrogate(node.value)}")
        return None
    return node.value
