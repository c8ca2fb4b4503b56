"""tools/bench.py --backend cuda's inference cases: nngraph's cuda backend (here under the
simulator, or on a GPU) against the GPU's torch peer, which here is the CPU's torch standing
in (peers.GPU_PEER set alone, DEVICE left 'cpu'). The cases have the GPU's shape: one torch
variant, no ONNX Runtime, the target on batch-1 latency against torch, each peer call host
arrays in and out, and the predictions agree before anything is timed. The network is the
benchmark's sequence model shrunk (3 steps of 2 features, 4 units): the simulator runs each
GPU thread in Python."""
import os
import sys

import pytest

pytest.importorskip("torch")

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tools")
sys.path.insert(0, TOOLS)

import bench  # noqa: E402
import bench_cases as bc  # noqa: E402
import bench_timing as bt  # noqa: E402
import peers  # noqa: E402

TINY = bt.Settings(warmup_steps=1, repeats=1, min_time_s=0.01, latency_calls=3, gemm_calls=1,
                   compile_cold_runs=1, compile_warm_runs=1, settle_s=0.0)


TINY_LSTM = (bc.LSTM.replace(f"shape: [{bc.LSTM_STEPS}, {bc.LSTM_FEATURES}]", "shape: [3, 2]")
             .replace(f"units: {bc.LSTM_UNITS}", "units: 4"))


@pytest.fixture
def gpu_peer(monkeypatch):
    monkeypatch.setattr(peers, "GPU_PEER", True)
    monkeypatch.setitem(bc.SPECS, "lstm", TINY_LSTM)
    monkeypatch.setitem(bc.SAMPLE_SHAPE, "lstm", (3, 2))
    monkeypatch.setattr(bc, "INFER_BATCHES", (1, 3))
    monkeypatch.setattr(bench, "POOL", 2)


def test_inference_cases_on_cuda_time_the_gpu_peer(gpu_peer):
    out = bench.bench_infer("lstm", "cuda", TINY)
    assert sorted(out) == ["lstm.infer_b1", "lstm.infer_b1_frozen", "lstm.infer_b3",
                           "lstm.infer_b3_frozen"]
    for key, entry in out.items():
        assert entry["executor"] == "CUDAExecutor"
        assert set(entry["max_abs_diff"]) <= {"nngraph_frozen", "torch_cuda"}
        assert not any("onnxruntime" in field for field in entry)
    b1 = out["lstm.infer_b1"]
    assert b1["target"] == {"key": "ratio_torch_over_nngraph_latency", "min": 1.0}
    assert b1["peer_threads_best"] == {"torch": 0}
    assert b1["ratio_torch_over_nngraph_latency"] == pytest.approx(
        b1["torch_latency_us"] / b1["nngraph_latency_us"])
    assert out["lstm.infer_b3"]["target"] == {"key": "ratio_nngraph_over_torch"}


def test_a_peer_that_computes_something_else_is_refused(gpu_peer, monkeypatch):
    """The timings compare one computation: a torch twin with other weights is caught."""
    twin = peers.torch_model

    def other(case, params):
        return twin(case, {k: v * 1.5 for k, v in params.items()})
    monkeypatch.setattr(peers, "torch_model", other)
    with pytest.raises(AssertionError, match="predictions differ from torch_cuda"):
        bench.bench_infer("lstm", "cuda", TINY)
