"""Errors a person can act on.

A bad spec produces `Diagnostic`s, each pointing at a file, line and column. All problems in
one file are collected before anything is raised, so a user fixes them in one pass:

    mynet.yaml:7:22: error[E013]: layer 'fc1': units must be >= 1, got -3
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field


class NNGraphError(Exception):
    """Base of every error nngraph raises on purpose (the CLI prints these without a traceback)."""


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    col: int
    code: str
    message: str
    severity: str = "error"          # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity}[{self.code}]: {self.message}"


class SpecError(NNGraphError):
    """A spec that cannot be turned into a network; `.diagnostics` lists every problem found."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.col))
        super().__init__("\n".join(str(d) for d in self.errors) or "invalid spec")

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class DataError(NNGraphError):
    """Data that does not fit the network: wrong input name, shape, dtype or values."""


class ModelFileError(NNGraphError):
    """A saved model file that is missing, truncated, corrupted or does not match."""


class TrainingError(NNGraphError):
    """Training that cannot go on, such as a loss that became NaN or infinite."""


class SearchError(NNGraphError):
    """A hyperparameter search that cannot run: Optuna missing, a bad storage or study."""


class TrainingWarning(UserWarning):
    """Training that goes on but looks wrong: outputs stuck at 0 or 1, a loss that grew."""


# Error codes. Stable: tests and users may grep for them.
CODES = {
    "E001": "syntax error",
    "E002": "unsafe or unsupported YAML",
    "E003": "document too large",
    "E010": "missing required key",
    "E011": "unknown key",
    "E012": "wrong type",
    "E013": "value out of range",
    "E020": "unknown op",
    "E021": "unknown layer reference",
    "E022": "duplicate name",
    "E023": "cycle",
    "E024": "wrong number of inputs",
    "E030": "shape mismatch",
    "E031": "size too large",
    "E040": "bad block",
    "W001": "unused layer",
}


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'conv2d'?)' when `word` is close to one of `choices`, else ''."""
    choices = [str(c) for c in choices]
    lowered = {c.lower(): c for c in reversed(choices)}       # case never hides a match
    key = str(word).lower()
    match = [lowered[key]] if key in lowered else \
        [lowered[m] for m in difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)]
    return f" (did you mean '{match[0]}'?)" if match else ""


@dataclass
class Reporter:
    """Collects diagnostics for one file. `at` is a (line, col) pair, 1-based."""
    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, at, code: str, message: str) -> None:
        line, col = at
        # A block written once and instantiated many times would repeat its error per copy.
        # (1, 1) means "position unknown" (a spec given as a dict): nothing to merge on.
        if (line, col) != (1, 1) and any((d.line, d.col, d.code) == (line, col, code)
                                         for d in self.diagnostics):
            return
        self.diagnostics.append(Diagnostic(self.file, line, col, code, message))

    def warning(self, at, code: str, message: str) -> None:
        line, col = at
        self.diagnostics.append(Diagnostic(self.file, line, col, code, message, "warning"))

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def raise_if_failed(self) -> None:
        if self.failed:
            raise SpecError(self.diagnostics)
