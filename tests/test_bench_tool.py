"""tools/bench.py on tiny settings with the reference backend: the document has its keys,
nngraph and its torch twins compute the same thing (the benchmark's ratios mean nothing
otherwise), each peer is compared at its faster thread count, and --load's busy processes
end with the run, or with the benchmark however it ends."""
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
sys.path.insert(0, TOOLS)

import bench  # noqa: E402
import bench_cases as bc  # noqa: E402
import bench_load  # noqa: E402
import bench_timing as bt  # noqa: E402
import bench_zoo  # noqa: E402
import peers  # noqa: E402

TINY = bt.Settings(warmup_steps=1, repeats=1, min_time_s=0.01, latency_calls=3, gemm_calls=1,
                   compile_cold_runs=1, compile_warm_runs=1, settle_s=0.0)


@pytest.fixture(scope="module")
def doc():
    return bench.run(list(bench.GROUPS), "reference", TINY)


def test_document_has_every_case_and_no_errors(doc):
    assert doc["summary"]["errors"] == [], {k: doc["cases"][k]["error"]
                                            for k in doc["summary"]["errors"]}
    assert set(doc["cases"]) == {
        "mlp.train", "mlp.infer_b1", "mlp.infer_b256", "mlp.flops", "lenet.train",
        "lenet.infer_b1", "lenet.infer_b256", "lenet.compile_cold", "lenet.compile_warm",
        "lstm.train", "mlp.infer_b1_frozen", "mlp.infer_b256_frozen",
        "lenet.infer_b1_frozen", "lenet.infer_b256_frozen"}
    assert doc["load"] == 0 and doc["busy_processes"]["count"] == 0
    assert doc["peer_threads"] == [1, 2]
    assert {"passed", "failed", "errors", "all_pass"} <= set(doc["summary"])
    json.loads(json.dumps(doc))                        # plain JSON all the way down


def test_machine_section_says_what_cpu_and_libraries_ran(doc):
    m = doc["machine"]
    cpu = m["cpu"]
    assert cpu["usable_cores"] >= 1 and cpu["cpu_count"] >= cpu["usable_cores"]
    assert isinstance(cpu["flags"], list)
    assert all(f.startswith(("sse4", "avx", "fma", "f16c", "amx")) for f in cpu["flags"])
    if os.path.exists("/proc/cpuinfo") and platform.machine() in ("x86_64", "AMD64"):
        assert cpu["vendor"] in ("GenuineIntel", "AuthenticAMD"), cpu["vendor"]
        assert cpu["model_name"] and cpu["family"] and cpu["model"]
        with open("/proc/cpuinfo") as f:          # what this CPU says, whatever it is
            listed = next(line for line in f if line.startswith("flags")).split(":")[1]
        assert cpu["flags"] == sorted(f for f in listed.split()
                                      if f.startswith(("sse4", "avx", "fma", "f16c", "amx")))
    if hasattr(os, "getloadavg"):
        assert len(m["load_average"]["start"]) == len(m["load_average"]["end"]) == 3
    assert m["numba"]["cpu_name"] and isinstance(m["numba"]["host_features"], list)
    assert m["nngraph_blas"]["provider"] in ("mkl", "openblas")
    if m["nngraph_blas"]["provider"] == "mkl":
        assert "Math Kernel Library" in m["nngraph_blas"]["mkl_version"]
    assert m["torch"]["threads"] == peers.THREADS and m["torch"]["parallel_backend"]
    assert "pools" in m["threadpools"]
    line = bench.bench_machine.summary(m, load=2)
    assert "\n" not in line and "cores usable" in line and line.endswith("2 busy processes")


def test_every_case_names_its_target_and_verdict(doc):
    for name, entry in doc["cases"].items():
        target = entry["target"]
        value = entry[target["key"]]
        # the reference backend compiles nothing: its compile time may round to 0 s
        assert value >= 0 if name.endswith(("compile_cold", "compile_warm")) else value > 0, name
        assert isinstance(entry["pass"], bool)
        if "min" in target:
            assert target["key"].startswith("ratio_") and entry["pass"] == (value >= target["min"])
        else:
            assert entry["pass"] == (value <= target["max"])
    cases = doc["cases"]
    assert cases["mlp.train"]["target"] == {"key": "ratio_nngraph_over_torch", "min": 3.0}
    assert cases["lenet.train"]["target"]["min"] == 2.5
    assert cases["lstm.train"]["target"]["min"] == 1.5
    assert cases["mlp.flops"]["target"]["min"] == 0.6
    for net in ("mlp", "lenet"):
        assert cases[f"{net}.infer_b1"]["target"] == {
            "key": "ratio_onnxruntime_over_nngraph_latency", "min": 1.0}
        assert cases[f"{net}.infer_b256"]["target"] == {
            "key": "ratio_nngraph_over_onnxruntime", "min": 1.0}
    for name in ("mlp.infer_b1", "mlp.infer_b256"):    # the Model, then its frozen copy
        live, frozen = cases[name], cases[f"{name}_frozen"]
        assert (live["model"], frozen["model"]) == ("Model", "Model.freeze()")
        assert frozen["target"] == live["target"]
        assert live[live["target"]["key"]] != frozen[frozen["target"]["key"]]
    assert cases["mlp.flops"]["flops_per_sample"] == 3 * 2 * (784 * 128 + 128 * 64 + 64 * 10)
    assert cases["lenet.compile_cold"]["target"]["max"] == 3.0
    assert cases["lenet.compile_warm"]["target"]["max"] == 0.3
    assert cases["lenet.compile_cold"]["detail"]["executor"] == "ReferenceExecutor"
    for kind in ("cold", "warm"):
        entry = cases[f"lenet.compile_{kind}"]
        assert entry["seconds_with_numba_init"] == entry["seconds"] + \
            entry["detail"]["numba_init_s"] > entry["seconds"]
        assert entry["runs"] == [entry["seconds"]]


def test_nngraph_and_torch_losses_agree(doc):
    for name in ("mlp.train", "mlp.flops", "lenet.train", "lstm.train"):
        check = doc["cases"][name]["loss_check"]
        assert set(check["rel_diff"]) == {"torch_1t", "torch_2t"}, name
        for diffs in check["rel_diff"].values():
            assert diffs[0] <= 1e-4, name
            # later steps agree too: same gradients, same momentum update
            assert max(diffs) <= 1e-3, name
    for name in ("mlp.infer_b1", "lenet.infer_b256"):
        diffs = doc["cases"][name]["max_abs_diff"]
        assert max(diffs.values()) <= 1e-4
        assert set(diffs) == {"nngraph_frozen", "onnxruntime_1t", "onnxruntime_2t",
                              "torch_1t", "torch_2t"}


def test_ratios_are_against_each_peers_faster_thread_count(doc):
    for name in ("mlp.train", "lenet.train", "lstm.train", "mlp.flops"):
        e = doc["cases"][name]
        rates = {n: e[f"torch_{n}t_samples_per_s"] for n in (1, 2)}
        best = max(rates, key=rates.get)
        assert e["peer_threads_best"] == {"torch": best}, name
        assert e["torch_samples_per_s"] == rates[best]
        assert len(e["torch_1t_repeats"]) == len(e["nngraph_repeats"]) == TINY.repeats
    e = doc["cases"]["mlp.train"]
    assert e["ratio_nngraph_over_torch"] == e["nngraph_samples_per_s"] / e["torch_samples_per_s"]
    for name in ("mlp.infer_b1", "lenet.infer_b1_frozen"):
        e = doc["cases"][name]
        for peer in ("onnxruntime", "torch"):
            lat = {n: e[f"{peer}_{n}t_latency_us"] for n in (1, 2)}
            best = min(lat, key=lat.get)
            assert e["peer_threads_best"][peer] == best and e[f"{peer}_latency_us"] == lat[best]
        assert e["ratio_onnxruntime_over_nngraph_latency"] == pytest.approx(
            e["onnxruntime_latency_us"] / e["nngraph_latency_us"])
    e = doc["cases"]["lenet.infer_b256"]
    ort = max(e["onnxruntime_1t_samples_per_s"], e["onnxruntime_2t_samples_per_s"])
    assert e["ratio_nngraph_over_onnxruntime"] == e["nngraph_samples_per_s"] / ort


def test_best_of_picks_the_faster_thread_count():
    rates = {"torch_1t": {"median": 900.0}, "torch_2t": {"median": 1200.0}}
    assert bench.best_of(rates, "torch") == "torch_2t"
    rates["torch_1t"]["median"] = 1300.0                # a loaded machine: one thread wins
    assert bench.best_of(rates, "torch") == "torch_1t"
    lat = {"onnxruntime_1t": {"median_s": 40e-6}, "onnxruntime_2t": {"median_s": 55e-6}}
    assert bench.best_of(lat, "onnxruntime", "median_s", min) == "onnxruntime_1t"
    entry = {}
    assert bench._peer_fields(entry, lat, "onnxruntime", "latency_us", "median_s", 1e6,
                              min) == "onnxruntime_1t"
    assert entry == {"onnxruntime_1t_latency_us": 40.0, "onnxruntime_2t_latency_us": 55.0,
                     "onnxruntime_latency_us": 40.0, "peer_threads_best": {"onnxruntime": 1}}


def test_each_torch_variant_runs_at_its_thread_count():
    seen = {}

    def record(name):
        return lambda _: seen.setdefault(name, set()).add(peers.torch.get_num_threads())
    names = ("nngraph", *peers.variants("torch"))
    peers.use_threads()
    bt.throughput({n: record(n) for n in names}, {n: [0] for n in names}, 1, TINY,
                  bench.torch_scopes())
    assert seen == {"nngraph": {peers.THREADS}, "torch_1t": {1}, "torch_2t": {2}}
    assert peers.torch.get_num_threads() == peers.THREADS


def test_loss_check_catches_a_different_torch_model():
    import nngraph
    model = nngraph.compile(bc.SPECS["mlp"], backend="reference", seed=0)
    params = {k: v.copy() for k, v in model.params.items()}
    params["hidden1.W"] = params["hidden1.W"][::-1].copy()      # rows swapped: another net
    trainer = peers.TorchTrainer(peers.torch_model("mlp", params), "image", bc.LR, bc.MOMENTUM)
    batches = bc.make_batches("mlp", 8, 1)
    with pytest.raises(AssertionError, match="first-step losses differ: .* torch_1t"):
        bench.loss_check("mlp", model, {"torch_1t": trainer}, batches,
                         [peers.to_torch(b) for b in batches], steps=1)


def test_torch_twin_does_not_share_memory_with_nngraph():
    import nngraph
    model = nngraph.compile(bc.SPECS["lstm"], backend="reference", seed=0)
    module = peers.torch_model("lstm", model.params)
    before = model.params["rnn.W"].copy()
    with peers.torch.no_grad():
        module.rnn.weight_ih_l0.add_(1.0)
    np.testing.assert_array_equal(model.params["rnn.W"], before)
    assert not module.rnn.bias_hh_l0.requires_grad


def test_case_selectors():
    assert bench.select("mlp") == ["mlp.train", "mlp.infer", "mlp.flops"]
    assert bench.select("train") == ["mlp.train", "lenet.train", "lstm.train"]
    assert bench.select("lenet.compile,lstm") == ["lenet.compile", "lstm.train"]
    assert bench.select(None) == list(bench.GROUPS)
    assert "zoo" not in bench.select(None) + bench.select("infer")     # opt-in only
    assert bench.select("zoo") == ["zoo"] and bench.select("lstm,zoo") == ["lstm.train", "zoo"]
    with pytest.raises(SystemExit):
        bench.select("resnet")


def test_cli_writes_the_document(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bt, "QUICK", TINY)
    out = tmp_path / "bench.json"
    rc = bench.main(["--backend", "reference", "--quick", "--cases", "mlp.train",
                     "--out", str(out), "--load", "1"])
    assert rc == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert json.loads(out.read_text()) == printed
    assert list(printed["cases"]) == ["mlp.train"] and printed["backend"] == "reference"
    assert printed["load"] == 1 and printed["busy_processes"]["count"] == 1
    assert "cores usable" in captured.err.splitlines()[0]
    assert our_busy_processes() == []


# ------------------------------------------------------------------------ --load
def running(pid: int) -> bool:
    """Whether a process exists and is not a zombie, by psutil or /proc."""
    try:
        import psutil
    except ImportError:
        if not os.path.isdir("/proc"):
            pytest.skip("neither psutil nor /proc to look at processes with")
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def our_busy_processes() -> list[int]:
    """Running busy processes whose parent is this test process."""
    try:
        import psutil
        return [p.pid for p in psutil.Process().children()
                if bench_load.MARKER in p.cmdline() and running(p.pid)]
    except ImportError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if bench_load.MARKER.encode() in cmdline and ppid == os.getpid() and \
                running(int(entry)):
            found.append(int(entry))
    return found


def test_load_runs_busy_processes_and_stops_them():
    with bench_load.BusyLoad(2) as busy:
        assert len(busy.pids) == 2 and all(running(p) for p in busy.pids)
        assert sorted(our_busy_processes()) == sorted(busy.pids)
        time.sleep(0.3)
    assert not any(running(p) for p in busy.pids) and our_busy_processes() == []
    record = busy.record()
    assert record["count"] == 2 and record["wall_seconds"] > 0
    if os.path.isdir("/proc"):
        assert all(c is not None and c > 0 for c in record["cpu_seconds"])   # they were busy


def test_load_stops_when_the_run_fails():
    with pytest.raises(KeyboardInterrupt):
        with bench_load.BusyLoad(1) as busy:
            pids = busy.pids
            raise KeyboardInterrupt              # Ctrl-C in the middle of a case
    assert pids and not any(running(p) for p in pids)


def test_busy_processes_end_when_the_benchmark_is_killed():
    code = (f"import sys, time; sys.path.insert(0, {TOOLS!r}); import bench_load; "
            "b = bench_load.BusyLoad(1).start(); print(b.pids[0], flush=True); time.sleep(60)")
    bench_proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  text=True)
    try:
        pid = int(bench_proc.stdout.readline())
        assert running(pid)
    finally:
        bench_proc.kill()                        # SIGKILL: no finally, no atexit
        bench_proc.wait()
    deadline = time.monotonic() + 10
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)


def test_load_must_not_be_negative():
    with pytest.raises(SystemExit):
        bench.main(["--load", "-1", "--cases", "mlp.train"])


def test_backend_cuda_without_a_torch_gpu_is_one_line():
    """--backend cuda measures against PyTorch CUDA eager; a PyTorch without CUDA (the CPU
    build here) cannot be that peer, and the tool says so in one line."""
    if __import__("torch").cuda.is_available():
        pytest.skip("this PyTorch has a GPU")
    proc = subprocess.run([sys.executable, os.path.join(TOOLS, "bench.py"), "--backend",
                           "cuda", "--quick"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "bench --backend cuda: this PyTorch has no CUDA device (a CPU build, or no GPU): the "
        "peer, PyTorch CUDA eager, cannot run"]


def test_the_torch_peer_on_cuda_is_one_variant(monkeypatch):
    monkeypatch.setattr(peers, "GPU_PEER", True)
    assert peers.variants("torch") == {"torch_cuda": 0}
    assert peers.variants("onnxruntime") == {"onnxruntime_1t": 1, "onnxruntime_2t": 2}



# ------------------------------------------------------------------------ zoo
def _onnx_file(path, node, x_shape, y_shape, inits=()) -> str:
    """A one-node ONNX model x -> y, saved at `path`."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, x_shape)], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, y_shape)], list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return str(path)


def test_zoo_reports_imported_networks_and_unsupported_ones(tmp_path, monkeypatch):
    """The zoo case on stand-ins for ResNet-50 and GoogLeNet: the benchmark's MLP exported
    by nngraph (imported back and measured), and an Abs node, which nngraph has no layer for
    (reported unsupported, the run going on)."""
    import onnx
    import nngraph
    mlp = nngraph.compile(bc.MLP, backend="reference", seed=0).export_onnx(
        str(tmp_path / "mlp.onnx"))
    other = _onnx_file(tmp_path / "abs.onnx", onnx.helper.make_node(
        "Abs", ["x"], ["y"], name="abs1"), [1, 3, 4, 4], [1, 3, 4, 4])
    monkeypatch.setattr(bench_zoo, "MODELS", (("mlp", mlp), ("abs", other)))
    checked, agree = [], bt.agree

    def spy(case, fns, inputs, scopes):
        checked.append((case, inputs["nngraph"][0].shape))
        return agree(case, fns, inputs, scopes)
    monkeypatch.setattr(bt, "agree", spy)
    doc = bench.run(bench.select("zoo"), "reference", TINY)
    cases = doc["cases"]
    assert set(cases) == {"zoo.mlp.compile", "zoo.mlp.infer_b1", "zoo.mlp.infer_b16",
                          "zoo.abs"}
    assert checked == [("zoo.mlp", (1, 784)), ("zoo.mlp", (16, 784))]     # before timing
    assert set(cases["zoo.abs"]) == {"file", "unsupported", "pass"}
    assert "Abs node 'abs1'" in cases["zoo.abs"]["unsupported"]
    assert cases["zoo.abs"]["pass"] is False
    assert cases["zoo.abs"]["file"] == "abs.onnx"
    assert doc["summary"]["errors"] == [] and doc["summary"]["failed"] == ["zoo.abs"]
    compiled = cases["zoo.mlp.compile"]
    assert compiled["target"] == {"key": "compile_s"} and compiled["pass"] is True
    assert compiled["compile_s"] == pytest.approx(compiled["import_s"] +
                                                  compiled["first_predict_s"])
    b1, b16 = cases["zoo.mlp.infer_b1"], cases["zoo.mlp.infer_b16"]
    for entry, key in ((b1, "ratio_onnxruntime_over_nngraph_latency"),
                       (b16, "ratio_nngraph_over_onnxruntime")):
        assert entry["target"] == {"key": key} and entry["pass"] is True and entry[key] > 0
        assert set(entry["max_abs_diff"]) == {"onnxruntime_1t", "onnxruntime_2t"}
        assert max(entry["max_abs_diff"].values()) <= 1e-4
        assert entry["ort_file"] == "the original file"          # its batch is symbolic
    assert (b1["batch"], b16["batch"]) == (1, 16) and b1["nngraph_latency_us"] > 0
    assert b1["onnxruntime_latency_us"] == min(b1[f"onnxruntime_{n}t_latency_us"]
                                               for n in (1, 2))
    assert b16["ratio_nngraph_over_onnxruntime"] == pytest.approx(b16[
        "nngraph_samples_per_s"] / max(b16[f"onnxruntime_{n}t_samples_per_s"] for n in (1, 2)))


def test_zoo_opens_a_fixed_batch_file_at_another_batch(tmp_path):
    """ResNet-50's file is for batch 1 only (input [1, 3, 224, 224], Reshape to [1, 2048]):
    ONNX Runtime gets it with that 1 made the batch size."""
    import onnx
    from onnx import numpy_helper
    path = _onnx_file(tmp_path / "fixed.onnx", onnx.helper.make_node(
        "Reshape", ["x", "shape"], ["y"]), [1, 2, 3], [1, 6],
        [numpy_helper.from_array(np.array([1, 6], dtype=np.int64), "shape")])
    x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    for predict in bench_zoo.ort_sessions(path, onnx.load(path), 4).values():
        np.testing.assert_array_equal(predict(x), x.reshape(4, 6))
