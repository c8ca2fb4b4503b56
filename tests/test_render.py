"""The generated drivers' calls as a reader sees them: literal arguments by name, every name
one the callee has; and the positional form the direct drivers run (fast_path.py) passes
the same values in the callee's order."""
from __future__ import annotations

import ast
import glob
import inspect
import os

import numpy as np
import pytest

import nngraph
from nngraph.backends.cpu import kernel_modules
from nngraph.backends.cpu.codegen import CPUCodegen
from nngraph.backends.cpu.render import Line
from nngraph.program import build_program

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.*")))


def _params(gen, module_alias, name):
    if module_alias is None:                     # a generated kernel of the module
        fn = next(n for n in ast.parse(gen.kernels[name]).body if isinstance(n, ast.FunctionDef))
        return [a.arg for a in fn.args.args]
    return list(inspect.signature(kernel_modules.function(f"{module_alias}.{name}").py_func)
                .parameters)


def _calls(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                    and f.value.id[1:] in kernel_modules.modules():
                yield node, f.value.id, f.attr
            elif isinstance(f, ast.Name) and f.id.startswith("k_"):
                yield node, None, f.id


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_drivers_name_literal_arguments_after_the_callees_parameters(path):
    gen = CPUCodegen(build_program(nngraph.load(path)), np.dtype("float32"))
    for mode in gen.modes:
        for call, alias, name in _calls(gen.drivers[mode]):
            params = _params(gen, alias, name)
            keywords = [k.arg for k in call.keywords]
            # the positional arguments first, then each remaining parameter by its name
            assert keywords == params[len(call.args):len(call.args) + len(keywords)], \
                (mode, name, keywords, params)
            assert len(call.args) + len(keywords) == len(params), (mode, name)
            assert all(not isinstance(a, ast.Constant) for a in call.args), (mode, name)
        for call, alias, name in _calls(gen.positional[mode]):
            assert not call.keywords and len(call.args) == len(_params(gen, alias, name))
    if path.endswith("lenet5.yaml"):
        assert "relu=True, pool=1, sh=1, sw=1" in gen.drivers["train"]


def test_a_line_renders_its_literals_by_name_from_the_first_one_on():
    line = Line("k_x", ["v_a", "1", "v_b[:, None]", "True"], ("a", "n", "b", "relu"),
                target="unfit += ")
    buffers = {"v_a", "v_b"}
    assert line.source({"k_x": "k_dense"}, buffers) == \
        "unfit += k_dense(v_a, n=1, b=v_b[:, None], relu=True)"
    assert line.source({}, buffers, keywords=False) == "unfit += k_x(v_a, 1, v_b[:, None], True)"
    assert Line("k_x", ["v_a", "1"]).source({}, buffers) == "k_x(v_a, 1)"   # no names known
