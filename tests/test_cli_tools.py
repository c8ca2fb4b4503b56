"""`nngraph compile`, `nngraph bench` (and --profile), and the program pictures of `nngraph viz
--fused/--backward`, through the command line as a user runs them."""
import importlib.util
import os
import re
import shutil

import numpy as np
import pytest

import nngraph
from nngraph.cli import main
from nngraph.cli_tools import KernelProfile, random_batch
from nngraph.backends.cpu.calls import group_calls
from nngraph.program import build_program

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XOR = os.path.join(ROOT, "specs", "xor_mlp.yaml")

# A conv (hand-written kernel + generated epilogue), an avgpool (here without its CPU
# lowering: the reference rule runs, see below) and dense layers (generated kernels): every
# kind of group in a few lines.
TINY = """
nngraph: 1
name: tiny_pool
inputs:
  image: {shape: [1, 6, 6]}
  label: {shape: [], dtype: int64}
layers:
  - {op: conv2d, name: c1, filters: 2, kernel: 3, activation: relu}
  - {op: avgpool2d, name: pool, size: 2}
  - {op: flatten}
  - {op: dense, name: hidden, units: 4, activation: tanh}
  - {op: dense, name: logits, units: 3}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train:
  optimizer: {type: sgd, lr: 0.1}
  batch_size: 8
"""

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")


@pytest.fixture(scope="module", autouse=True)
def avgpool_without_a_lowering():
    """avgpool2d as an op registered without a CPU lowering yet: its groups run the numpy
    reference rule from the driver, so that these tests see every kind of group (every op
    of the registry has a lowering: tests/test_lowerings.py)."""
    from nngraph.backends.cpu import lower
    taken = {k: lower.rules()[k] for k in (("avgpool2d", "forward"), ("avgpool2d", "backward"))}
    for k in taken:
        del lower.RULES[k]
    yield
    lower.RULES.update(taken)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("nngraph_cache"))


@pytest.fixture(autouse=True)
def _cache_dir(cache, monkeypatch):
    monkeypatch.setenv("NNGRAPH_CACHE_DIR", cache)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("specs") / "tiny_pool.yaml"
    path.write_text(TINY)
    return str(path)


@pytest.fixture(scope="module")
def tiny_calls(tiny):
    return group_calls(build_program(nngraph.load(tiny)))


def test_the_tiny_spec_has_every_kind_of_group(tiny_calls):
    runs = {name: c.runs for name, c in tiny_calls.items()}
    assert runs["c1_relu"] == "hand-written" and runs["d_c1_relu"] == "hand-written"
    assert runs["pool"] == "reference" and runs["d_pool"] == "reference"
    assert runs["hidden_tanh"] == runs["loss_1"] == "generated"
    assert tiny_calls["c1_relu"].callees == ["_conv.conv2d_forward"]    # relu applied inside
    assert tiny_calls["pool"].describe() == "R.forward(pool)"


# ------------------------------------------------------------------------ compile

def test_emit_writes_a_module_that_imports_and_has_every_kernel(tiny, tiny_calls, tmp_path,
                                                                capsys):
    out = tmp_path / "build"
    assert main(["compile", tiny, "--emit", str(out)]) == 0
    path = out / "tiny_pool_float32.py"
    assert f"wrote {path}" in capsys.readouterr().out
    source = path.read_text()
    spec = importlib.util.spec_from_file_location("emitted_tiny_pool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)               # njit compiles lazily: importing is cheap
    for name, c in tiny_calls.items():
        assert name in source                      # the header lists every group
        for k in c.kernels:
            assert f"def {k}(" in source and callable(getattr(module, k))
    assert "R.forward('pool'" in source and "R.backward('pool'" in source
    assert all(callable(getattr(module, d)) for d in ("train", "evaluate", "predict"))

    index = (out / "index.txt").read_text()
    assert "module   tiny_pool_float32.py" in index
    for name, c in tiny_calls.items():
        assert re.search(rf"^  {re.escape(name)}\s+{c.group.kind}\s+{c.runs}\s", index, re.M)
    assert "groups   11 fused groups: 5 generated, 2 hand-written, 2 reference, 2 view" in index
    assert re.search(r"^arena    train\s+[\d.,]+ (B|KiB) per sample \([\d,]+ float32\)", index,
                     re.M)


def test_emit_frozen_writes_the_predict_only_module_too(tmp_path, capsys):
    from nngraph.kernels.cpu.packed import PACK_MIN
    assert main(["compile", "specs/mnist_mlp.yaml", "--emit", str(tmp_path), "--frozen"]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "mnist_mlp_float32_frozen.py"
    assert f"wrote {path}" in out and "hidden1.W, hidden2.W, logits.W" in out
    assert f"packed when they have {PACK_MIN:,} elements or more" in out
    source = path.read_text()
    assert "def predict(R," in source and "def train(" not in source
    assert "gemm_packed(x, W, Wp, y)" in source and "from nngraph.kernels.cpu.packed import" \
        in source
    assert (tmp_path / "mnist_mlp_float32.py").exists()
    assert main(["compile", "specs/mnist_mlp.yaml", "--frozen"]) == 1
    assert "--frozen writes a module: give --emit DIR too" in capsys.readouterr().err


def test_compile_without_emit_prints_the_groups(tiny, capsys):
    assert main(["compile", tiny, "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny_pool: generated CPU code (float64)")
    assert "module" not in out.splitlines()[3]
    assert re.search(r"c1_relu\s+forward\s+hand-written\s+c1 \+ c1:relu\s+"
                     r"_conv.conv2d_forward\n", out)
    assert re.search(r"d_pool\s+backward\s+reference\s+vjp:pool\s+R.backward\(pool\)", out)


def test_float64_emits_its_own_file(tiny, tmp_path):
    assert main(["compile", tiny, "--dtype", "float64", "--emit", str(tmp_path)]) == 0
    assert "_f = np.float64" in (tmp_path / "tiny_pool_float64.py").read_text()


def test_cuda_module_is_written_and_frozen_cuda_is_a_clear_error(tiny, tmp_path, capsys):
    assert main(["compile", tiny, "--backend", "cuda", "--emit", str(tmp_path / "x")]) == 0
    assert "@cuda.jit" in (tmp_path / "x" / "tiny_pool_float32_cuda.py").read_text()
    capsys.readouterr()
    assert main(["compile", tiny, "--backend", "cuda", "--frozen",
                 "--emit", str(tmp_path / "y")]) == 1
    err = capsys.readouterr().err
    assert "no frozen form" in err and "Traceback" not in err
    assert not (tmp_path / "y").exists()


def test_a_bad_spec_is_reported_not_raised(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("op: dense, name: hidden", "op: dnese, name: hidden"))
    assert main(["compile", str(bad)]) == 1
    assert "did you mean 'dense'" in capsys.readouterr().err


# ------------------------------------------------------------------------ bench

def test_bench_prints_its_numbers(capsys):
    assert main(["bench", XOR, "--steps", "3", "--warmup", "1", "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "bench xor_mlp on cpu (float32): batch 16, 3 steps after 2 warm-up" in out
    for pattern in (r"compile\s+[\d.]+ s", r"first step\s+[\d.]+ s",
                    r"step\s+[\d.]+ ms\s+median \(min [\d.]+, mean [\d.]+\)",
                    r"throughput\s+[\d,]+ samples/s"):
        assert re.search(pattern, out), pattern
    assert "profile" not in out


def test_bench_on_the_reference_backend(capsys):
    assert main(["bench", XOR, "--backend", "reference", "--steps", "2"]) == 0
    assert "on reference" in capsys.readouterr().out


def test_profile_lists_every_kernel_of_the_step(tiny, tiny_calls, capsys):
    assert main(["bench", tiny, "--steps", "2", "--warmup", "0", "--profile"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("kernel / node"):]
    rows = {(m.group(1), m.group(2)): m.group(3) for m in re.finditer(
        r"^  (\S+)\s+(\S+)\s+(generated|hand-written|reference)\s+2\s+[\d.]+\s+[\d.]+$",
        table, re.M)}
    expected = {}
    for name, c in tiny_calls.items():
        for line, callee in zip(c.lines, c.callees):
            label = f"{callee}(pool)" if callee.startswith("R.") else callee
            expected[(label, name)] = c.runs if callee.startswith(("R.", "_conv.")) else \
                "generated"
    assert rows.items() >= expected.items()
    assert ("R.loss(loss_1)", "loss_1") not in rows     # that loss has a CPU rule
    assert re.search(r"optimizer update \(sgd\)\s+-\s+hand-written\s+2", table)
    assert re.search(r"all steps\s+2\s+[\d.]+\s+100.0", table)
    assert "% step" in out


def test_profile_restores_what_it_wrapped():
    model = nngraph.compile(XOR, backend="cpu")
    batch = model._batch(random_batch(model.net, 4, np.random.default_rng(0)), True)
    module, ex = model.executor.module, model.executor
    before = dict(vars(module))
    model.train_step(batch)
    model.train_step(batch)                 # the second run builds the direct driver
    direct = dict(ex.direct)
    assert direct["train"] is not None
    with KernelProfile(model) as prof:
        assert module.k_hidden_tanh is not before["k_hidden_tanh"]
        assert ex.direct["train"] is None   # calls go through the swapped names
        model.train_step(batch)
    assert dict(vars(module)) == before and ex.direct == direct
    assert "forward" not in vars(ex.runtime) and "_update" not in vars(ex)
    groups = {group for (_, group) in prof.rows}
    assert "?" not in groups and {"hidden_tanh", "out_sigmoid", "d_hidden_tanh"} <= groups


def test_profile_needs_the_cpu_backend(capsys):
    assert main(["bench", XOR, "--backend", "reference", "--profile", "--steps", "1"]) == 1
    assert "use --backend cpu" in capsys.readouterr().err


def test_random_batch_keeps_indices_in_range():
    net = nngraph.load("""
nngraph: 1
name: tokens
inputs:
  tokens: {shape: [7], dtype: int64}
  label: {shape: [], dtype: int64}
  target: {shape: [2]}
layers:
  - {op: embedding, name: embed, vocab: 5, dim: 3}
  - {op: flatten}
  - {op: dense, name: logits, units: 4}
  - {op: dense, name: reg, in: flatten_1, units: 2}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
  - {op: squared_error, in: [reg, target]}
""")
    data = random_batch(net, 500, np.random.default_rng(1))
    assert data["tokens"].shape == (500, 7) and data["tokens"].dtype == np.int64
    assert data["tokens"].min() == 0 and data["tokens"].max() == 4
    assert data["label"].shape == (500,) and data["label"].max() == 3
    assert data["target"].dtype == np.float32 and 0 <= data["target"].min() < 1


# ------------------------------------------------------------------------ viz

def _dot(spec, tmp_path, *flags):
    out = tmp_path / "program.dot"
    assert main(["viz", spec, "-o", str(out), *flags]) == 0
    return out.read_text(encoding="utf-8")


def test_viz_fused_draws_one_cluster_per_kernel(tiny, tiny_calls, tmp_path):
    source = _dot(tiny, tmp_path, "--fused")
    forward = [n for n, c in tiny_calls.items() if c.group.kind != "backward"]
    assert sorted(re.findall(r"subgraph cluster_group_(\w+)", source)) == sorted(forward)
    assert "<b>k_hidden_tanh</b>" in source and "<b>k_logits</b>" in source
    assert "reference rule: avgpool2d" in source
    assert "kernels/cpu conv2d_forward" in source
    assert "6 fused groups: 3 generated, 1 hand-written, 1 reference, 1 view" in source
    assert "vjp:" not in source and "grad:" not in source


def test_viz_backward_draws_gradients(tiny, tmp_path):
    source = _dot(tiny, tmp_path, "--backward")
    for n in ("c1", "c1:relu", "pool", "flatten_1", "hidden", "hidden:tanh", "logits", "loss_1"):
        assert f"<b>vjp:{n}</b>" in source and f"∂ {n}<br/>" in source
    assert "seed 1.0" in source                        # the loss's weight starts the chain
    for key in ("c1.W", "c1.b", "hidden.W", "hidden.b", "logits.W", "logits.b"):
        assert f"<b>∂{key}</b>" in source
    assert "vjp:image" not in source                   # nothing flows into the data
    # grad:n -> vjp:n for 8 nodes, vjp:n -> grad of its input for 7 (c1 reads the data)
    assert len(re.findall(r"dir=back penwidth=1.3 style=dashed", source)) == 15
    assert "cluster_group_" not in source


def test_viz_fused_backward_has_backward_clusters(tiny, tiny_calls, tmp_path):
    source = _dot(tiny, tmp_path, "--fused", "--backward")
    assert sorted(re.findall(r"subgraph cluster_group_(\w+)", source)) == sorted(tiny_calls)
    assert "<b>k_d_hidden_tanh</b>" in source and "kernels/cpu conv2d_backward" in source
    assert "11 fused groups: 5 generated, 2 hand-written, 2 reference, 2 view" in source


@needs_dot
@pytest.mark.parametrize("ext,magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_viz_program_pictures_are_written(tiny, tmp_path, ext, magic, capsys):
    for flags in (["--fused"], ["--backward"], ["--fused", "--backward"]):
        out = tmp_path / f"p.{ext}"
        assert main(["viz", tiny, "-o", str(out), *flags]) == 0
        assert magic in out.read_bytes()[:4096]
        assert f"wrote {out}" in capsys.readouterr().out
