"""Reading specs: source positions, block expansion, validation into a Network.

    load_file / load_text / load_dict   run the spec stage of nngraph/pipeline.py (parse,
                                        build) and return the Network; SpecError otherwise
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import pipeline
from ..errors import Diagnostic, Reporter, SpecError
from .build import build
from .source import from_python, read_text

__all__ = ["load_file", "load_text", "load_dict", "load_any"]

MAX_READ = 8 * 1024 * 1024 + 1        # one byte past the largest spec read (positions.py)


def load_file(path: str):
    """Parse, validate and shape-check a spec file. Raises SpecError."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_READ)
    except ValueError as e:               # a NUL byte in the path
        raise SpecError([_file_diag(path, f"cannot read the spec: {e}")]) from None
    except OSError as e:
        raise SpecError([_file_diag(path, f"cannot read the spec: {e.strerror or e}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError([_file_diag(path, f"the spec is not UTF-8 text (byte {e.start})")]) from None
    return load_text(text, path)


@dataclass
class SpecState:
    """What the spec stage of the pipeline works on."""
    file: str
    rep: Reporter
    text: str | None = None      # a file's text, or
    data: Any = None             # a spec given as Python data
    source: Any = None           # what `parse` made: source.Source
    net: Any = None              # what `build` made: graph.Network


@pipeline.implements("spec", "parse", lambda s: [
    f"{type(s.source.data).__name__} with {len(s.source.value_pos)} positioned values"])
def parse(s: SpecState) -> SpecState:
    s.source = read_text(s.file, s.text, s.rep) if s.text is not None else \
        from_python(s.file, s.data, s.rep)
    s.rep.raise_if_failed()
    return s


@pipeline.implements("spec", "build", lambda s: [
    f"{n}: {d['kind']} {getattr(d.get('op'), 'name', '') or ''} {d.get('shape')}"
    for n, d in s.net.graph.nodes(data=True)])
def build_network(s: SpecState) -> SpecState:
    s.net = build(s.source, s.rep)
    return s


def load_text(text: str, file: str = "<string>"):
    """A spec's YAML or JSON text (JSON when `file` ends in .json) as a Network."""
    return pipeline.run("spec", SpecState(file, Reporter(file), text=text)).net


def load_dict(spec: dict, file: str = "<dict>"):
    """A spec given as Python data (positions are unknown: every error points at 1:1)."""
    return pipeline.run("spec", SpecState(file, Reporter(file), data=spec)).net


def load_any(spec):
    """nngraph.load: a Network as it is; a path, YAML or JSON text, or a dict loaded."""
    import os

    from ..graph import Network
    if isinstance(spec, Network):
        return spec
    if isinstance(spec, (dict, list)):          # a list is refused there, with the reason
        return load_dict(spec)
    if isinstance(spec, str) and "\n" in spec:
        return load_text(spec)
    if isinstance(spec, (str, bytes, os.PathLike)):
        return load_file(os.fsdecode(spec))
    raise SpecError([Diagnostic("<spec>", 1, 1, "E012", "nngraph.load takes a path, YAML or "
                                f"JSON text, a dict or a Network, not {type(spec).__name__}")])


def _file_diag(path, message):
    return Diagnostic(path, 1, 1, "E001", message)
