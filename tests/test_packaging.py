"""What a wheel of nngraph holds: every package of the source tree. An editable install
finds subpackages whatever pyproject.toml lists; `pip install .` ships only those listed."""
from __future__ import annotations

import os

import pytest

tomllib = pytest.importorskip("tomllib")      # Python 3.11+

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _packages_on_disk() -> set:
    out = set()
    for top, name in (("nngraph", "nngraph"), ("kernels", "nngraph.kernels")):
        for here, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                rel = os.path.relpath(here, os.path.join(ROOT, top))
                out.add(name if rel == "." else f"{name}.{rel.replace(os.sep, '.')}")
    return out


def test_pyproject_lists_every_package():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    on_disk = _packages_on_disk()
    assert {"nngraph.backends.cpu.lower", "nngraph.kernels.cpu"} <= on_disk
    assert on_disk - listed == set(), "pyproject.toml [tool.setuptools] packages misses these"
    assert listed - on_disk == set(), "pyproject.toml lists packages that do not exist"
