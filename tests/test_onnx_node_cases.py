"""The onnx package's node test cases that tools/onnx_node_cases.py found passing
(tests/onnx_node_cases_passing.txt, `module/case` a line) still import and predict their
stored outputs. Only the generator modules the list names are imported, and the cases run on
the reference backend: a case is one small node, which the cpu backend would spend seconds
compiling for milliseconds of work."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parent.parent
PASSING = ROOT / "tests" / "onnx_node_cases_passing.txt"
PASSING_CASES = PASSING.read_text().split() if PASSING.exists() else []


def _tool():
    spec = importlib.util.spec_from_file_location("onnx_node_cases",
                                                  ROOT / "tools" / "onnx_node_cases.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TOOL = _tool()


@pytest.mark.parametrize("case", PASSING_CASES)
def test_node_case_still_passes(case):
    module, name = case.split("/")
    try:
        found = {c.name: c for c in TOOL.generated(module)}
    except ImportError:
        pytest.skip("not in this onnx installation")
    if name not in found:
        pytest.skip("not in this onnx installation")
    assert TOOL.run_case(found[name]) == "pass"


def test_the_new_operators_are_among_them():
    assert {"selu/test_selu", "softsign/test_softsign",
            "globalmaxpool/test_globalmaxpool"} <= set(PASSING_CASES)
