"""The CPU backend's lowerings (nngraph/backends/cpu/lower/): every hand-written kernel is
reachable from a lowering that declares it, every op has a lowering or a stated reason not
to, a lowering calls only what it declares, and every example spec runs fused."""
import glob
import os

import pytest
from numba.core.dispatcher import Dispatcher

import nngraph
from nngraph.backends.cpu import lower
from nngraph.ir import forward_of
from nngraph.backends.cpu.calls import codegen, group_calls
from nngraph.backends.cpu import kernel_modules
from nngraph.ops import REGISTRY
from nngraph.ops.base import Fusion
from nngraph.program import build_program

SPECS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "specs", "*.*")))


RUNTIME_MODULES = {
    "blas", "blas_library", "packed", "team", "sync",   # products, and the threads that run them
    "check", "optim", "conv_cols"}     # batch checks, the optimizer step, conv's own helpers
"""Kernel modules that the runtime or other kernels call, not generated code's lowerings."""


def hand_written() -> set:
    """'_conv.conv2d_forward', ...: the public kernels of the modules generated code calls."""
    out = set()
    for module in sorted(kernel_modules.modules() - RUNTIME_MODULES):
        mod, alias = kernel_modules.load(module), kernel_modules.alias(module)
        for name, value in vars(mod).items():
            if isinstance(value, Dispatcher) and not name.startswith("_") \
                    and value.py_func.__module__ == mod.__name__ \
                    and value.targetoptions.get("inline") != "always":   # helpers of kernels
                out.add(f"{alias}.{name}")
    return out


def declared() -> set:
    return {c for rule in lower.rules().values() for c in rule.calls}


def test_every_hand_written_kernel_is_reachable_from_a_lowering():
    missing = hand_written() - declared()
    assert not missing, f"hand-written kernels no lowering calls: {sorted(missing)}"
    assert declared() <= hand_written(), sorted(declared() - hand_written())


def test_every_op_has_a_lowering_or_a_reason():
    rules = lower.rules()
    for name, op in REGISTRY.items():
        kind = "loss" if op.kind == "loss" else "forward"
        covered = (name, kind) in rules or (kind == "forward" and op.fusion == Fusion.ELEMWISE
                                            and op.scalar is not None)
        assert covered or name in lower.REFERENCE_ONLY, \
            f"op {name} has no CPU lowering and no reason in lower.REFERENCE_ONLY"
    assert set(lower.REFERENCE_ONLY) <= set(REGISTRY)
    for name, why in lower.REFERENCE_ONLY.items():
        assert len(why) > 20 and (name, "forward") not in rules


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_each_spec_runs_fused_and_calls_only_what_its_lowerings_declare(path):
    program = build_program(nngraph.load(path))
    gen = codegen(program)
    rules = lower.rules()
    numpy_groups = []
    for name, calls in group_calls(program, gen=gen).items():
        if calls.runs == "reference":
            ops = {forward_of(n) for n in calls.group.nodes}
            if not all(program.graph.node(n).op.name in lower.REFERENCE_ONLY for n in ops):
                numpy_groups.append(f"{name} ({calls.describe()})")
        anchor = program.graph.node(calls.group.anchor).op.name
        allowed = {c for (op, _), rule in rules.items() if op == anchor for c in rule.calls}
        for callee in calls.callees:
            if "." in callee and not callee.startswith("R."):
                assert callee in allowed, f"{name}: {callee} is not declared by {anchor}'s rules"
    assert not numpy_groups, f"groups running numpy rules: {numpy_groups}"


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_generated_modules_import_only_what_they_use(path):
    import ast
    from nngraph.backends.cpu.codegen import CPUCodegen
    tree = ast.parse(CPUCodegen(build_program(nngraph.load(path)), "float32").source())
    imported = {(a.asname or a.name).split(".")[0] for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert imported - used == set()
