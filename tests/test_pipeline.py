"""The compilation as one list of passes (nngraph/pipeline.py): listed by `nngraph compile
--passes`, each stage's passes implemented and run in the listed order, and
NNGRAPH_DEBUG=passes showing what each made."""
import os
import subprocess
import sys

import pytest

import nngraph
from nngraph import pipeline
from nngraph.ir import Vjp
from nngraph.cli import main
from nngraph.program import build_program

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_every_pass_is_listed_and_implemented(capsys):
    import nngraph.backends.cpu.codegen  # noqa: F401 - registers the cpu passes
    import nngraph.backends.cuda.codegen  # noqa: F401 - and the cuda ones
    assert main(["compile", "--passes"]) == 0
    out = capsys.readouterr().out
    for stage, name, _ in pipeline.PASSES:
        assert f" {name} " in out
        assert (stage, name) in pipeline._DONE, f"{stage}: {name} has no implementation"
    assert [line.split()[0] for line in out.splitlines() if not line.startswith(" ")] == \
        ["spec", "program", "cpu", "cuda"]


def test_a_pass_outside_the_list_is_refused():
    with pytest.raises(ValueError, match="no pass 'optimise' in stage 'spec'"):
        pipeline.implements("spec", "optimise")


def test_debug_passes_shows_each_pass_in_order():
    code = ("import nngraph; from nngraph.program import build_program; "
            "build_program(nngraph.load('specs/xor_mlp.yaml'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NNGRAPH_DEBUG": "passes"}, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    shown = [line.split(":")[1].strip() for line in out.stderr.splitlines()
             if line.startswith("── ")]
    assert shown == ["parse", "build", "lower", "autodiff"]
    assert "   hidden:tanh: layer tanh <- hidden" in out.stderr      # the lowered graph


def test_the_stages_give_what_they_gave_before():
    net = nngraph.load(os.path.join(ROOT, "specs", "lenet5.yaml"))
    program = build_program(net)
    assert program.losses == ["loss_1"] and Vjp("c1") in program.graph
    assert program.outputs == {"logits": "logits"}
