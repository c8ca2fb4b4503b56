"""nngraph against PyTorch eager and ONNX Runtime: one process, the same data, the same
initial weights; prints one JSON document of raw numbers, ratios, targets and pass/fail.

    python tools/bench.py                                  # everything, cpu backend
    python tools/bench.py --load 2                         # the same beside 2 busy processes
    python tools/bench.py --backend reference --quick      # smoke run of the tool itself
    python tools/bench.py --cases mlp,lstm.train --out bench.json

Cases (a selector picks a group by its full name, its network or its kind):
    mlp.train  lenet.train  lstm.train   training samples/s vs torch (targets 3x, 2.5x, 1.5x)
    mlp.infer  lenet.infer               batch-1 latency (target: ONNX Runtime's or less) and
                                         batch-256 samples/s vs ONNX Runtime, of the Model
                                         and of its Model.freeze() copy
    mlp.flops                            MLP training at batch 256 as a fraction of numpy's
                                         1024^3 float32 GEMM rate (target 60%)
    lenet.compile                        train + predict compile time, cold and in a second
                                         process (targets 3 s and 0.3 s; medians of 3 runs)
    zoo (opt-in: --cases zoo)            imported ONNX ResNet-50 and GoogLeNet: compile time,
                                         batch-1 latency, batch-16 samples/s vs ONNX Runtime
                                         on the same file; reported (tools/bench_zoo.py)
    dist (opt-in: --cases dist)          data-parallel MLP training under mpirun: samples/s
                                         of 1 rank and 2 ranks, Allreduce ms per step
                                         (tools/bench_dist.py); reported

Every ratio is named for what it divides and is > 1 when nngraph is better: throughput is
nngraph / peer, latency is peer / nngraph. Each peer (torch, ONNX Runtime) is measured at 1
and at 2 threads, interleaved with nngraph, and the ratio is against the faster of the two
(`torch_1t_*`, `torch_2t_*`, `peer_threads_best`). Before anything is timed, the first
training losses of nngraph and torch at each thread count must agree to 1e-4 (relative),
and predictions of nngraph, torch and ONNX Runtime at each thread count must agree, so that
every comparison is of the same computation. A case that ran on the reference interpreter
when another backend was asked for fails (`fell_back_to_reference`). Exit status 2 when a
case could not be measured (its `error`).

`--backend cuda` times the training cases against PyTorch CUDA eager (`torch_cuda`; targets
1.5x for the MLP, 1x for LeNet-5 and the LSTM) and the inference cases against the same peer
(target: batch-1 latency no more than PyTorch's; batch-256 throughput is reported), each call
host arrays in and out on both sides; it needs a PyTorch with CUDA and a GPU, and says so in
one line otherwise.

`--load N` runs N busy single-threaded processes (tools/bench_load.py) from before the first
case to the end, stopped however the run ends; the document records `load` and the CPU
time they got. `machine` describes the CPU (vendor, model, SIMD flags), the usable cores,
the load average at start and end, numba's target, nngraph's BLAS (MKL's version and the
processors it took this CPU for), PyTorch's BLAS and threading, and every thread pool
loaded (tools/bench_machine.py); the log's first line sums it up.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_cases as bc          # noqa: E402
import bench_dist                 # noqa: E402
import bench_load                 # noqa: E402
import bench_machine              # noqa: E402
import bench_timing as bt         # noqa: E402
import bench_zoo                  # noqa: E402
import nngraph                    # noqa: E402
# nngraph's kernels load before PyTorch, as in a process that runs nngraph alone: MKL then
# takes its own Intel OpenMP threads. With PyTorch's GNU OpenMP loaded first, MKL runs on
# that instead and nngraph keeps its update off MKL's threads (kernels/cpu/team.py).
from nngraph.kernels.cpu import team  # noqa: E402,F401
import peers                      # noqa: E402

GROUPS = ("mlp.train", "mlp.infer", "mlp.flops", "lenet.train", "lenet.infer",
          "lenet.compile", "lstm.train")
OPT_IN = ("zoo", "dist")          # run only when a selector names them
TRAIN_TARGETS = {"mlp": 3.0, "lenet": 2.5, "lstm": 1.5}
CUDA_TRAIN_TARGETS = {"mlp": 1.5, "lenet": 1.0, "lstm": 1.0}    # against PyTorch CUDA eager
FLOPS_TARGET = 0.6
COMPILE_TARGETS = {"cold": 3.0, "warm": 0.3}
LOSS_RTOL = 1e-4
POOL = 8                          # distinct batches each loop cycles through


def select(cases: str | None) -> list[str]:
    """Groups matching comma-separated selectors: 'mlp', 'train', 'lenet.infer', 'compile'."""
    if not cases:
        return list(GROUPS)
    wanted = [c.strip() for c in cases.split(",") if c.strip()]
    unknown = [c for c in wanted if not any(_matches(g, c) for g in GROUPS + OPT_IN)]
    if unknown:
        raise SystemExit(f"bench: unknown case(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(GROUPS + OPT_IN)} or their parts")
    return [g for g in GROUPS + OPT_IN if any(_matches(g, c) for c in wanted)]


def _matches(group: str, selector: str) -> bool:
    net, _, kind = group.partition(".")
    return selector in (group, net, kind)


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def _compile(case: str, backend: str):
    return nngraph.compile(bc.SPECS[case], backend=backend, seed=0, dtype="float32")


def _target(entry: dict, key: str, minimum: float | None = None,
            maximum: float | None = None) -> dict:
    value = entry[key]
    entry["target"] = {"key": key, **({"min": minimum} if minimum is not None else {}),
                       **({"max": maximum} if maximum is not None else {})}
    entry["pass"] = bool((minimum is None or value >= minimum) and
                         (maximum is None or value <= maximum))
    return entry


def best_of(results: dict, peer: str, key: str = "median", faster=max) -> str:
    """The name of the peer's fastest thread count in `results` {name: {key: value}}:
    best_of(rates, "torch") -> "torch_2t" by the highest median samples/s,
    best_of(lat, "onnxruntime", "median_s", min) by the lowest median latency."""
    return faster(peers.variants(peer), key=lambda name: results[name][key])


def torch_scopes() -> dict:
    """{'torch_1t': scope, ...}: PyTorch's thread count for each of its variants."""
    return {name: functools.partial(peers.torch_threads, n)
            for name, n in peers.variants("torch").items()}


def _peer_fields(entry: dict, results: dict, peer: str, unit: str, key: str, scale: float,
                 faster) -> str:
    """Records the peer at each thread count (`{peer}_1t_{unit}`...) and at its best
    (`{peer}_{unit}`, `peer_threads_best`); returns the best variant's name."""
    best = best_of(results, peer, key, faster)
    for name in peers.variants(peer):
        entry[f"{name}_{unit}"] = results[name][key] * scale
    entry[f"{peer}_{unit}"] = results[best][key] * scale
    entry.setdefault("peer_threads_best", {})[peer] = peers.variants(peer)[best]
    return best


# ------------------------------------------------------------------------ training
def loss_check(case: str, model, trainers: dict, batches: list, tbatches: list,
               steps: int = 3, scopes: dict | None = None) -> dict:
    """Train nngraph and each torch trainer {name: fn(batch)} from the same weights on the
    same batches; the first losses must agree to LOSS_RTOL. Later steps also check the
    gradients and the momentum update, reported."""
    ours = [model.train_step(b) for b in batches[:steps]]
    check = {"nngraph": ours, "rel_diff": {}}
    for name, trainer in trainers.items():
        with bt.scope(scopes, name):
            theirs = [trainer(b) for b in tbatches[:steps]]
        diffs = [rel_diff(a, b) for a, b in zip(ours, theirs)]
        if not diffs[0] <= LOSS_RTOL:
            raise AssertionError(f"{case}: first-step losses differ: nngraph {ours[0]!r}, "
                                 f"{name} {theirs[0]!r} (relative {diffs[0]:.2e} > "
                                 f"{LOSS_RTOL:g})")
        check[name], check["rel_diff"][name] = theirs, diffs
    return check


def train_rates(case: str, backend: str, batch: int, s: bt.Settings) -> tuple[dict, dict]:
    """(samples/s of nngraph and of torch at each thread count, loss check) for one network
    at one batch size. Each torch variant trains its own copy of the initial weights."""
    model = _compile(case, backend)
    trainers = {name: peers.TorchTrainer(peers.torch_model(case, model.params),
                                         bc.INPUT[case], bc.LR, bc.MOMENTUM)
                for name in peers.variants("torch")}
    batches = bc.make_batches(case, batch, POOL, seed=1)
    tbatches = [peers.to_torch(b) for b in batches]
    scopes = torch_scopes()
    check = loss_check(case, model, trainers, batches, tbatches, scopes=scopes)
    rates = bt.throughput({"nngraph": model.train_step, **trainers},
                          {"nngraph": batches, **{name: tbatches for name in trainers}},
                          batch, s, scopes)
    rates["executor"] = type(model.executor).__name__
    return rates, check


def _train_entry(rates: dict, check: dict, **fields) -> tuple[dict, float, float]:
    """The fields every training entry has; returns it with nngraph's and the best
    torch's samples/s."""
    entry = {**fields, "executor": rates["executor"],
             "nngraph_samples_per_s": rates["nngraph"]["median"]}
    best = _peer_fields(entry, rates, "torch", "samples_per_s", "median", 1.0, max)
    entry["nngraph_repeats"] = rates["nngraph"]["repeats"]
    for name in peers.variants("torch"):
        entry[f"{name}_repeats"] = rates[name]["repeats"]
    entry["loss_check"] = check
    return entry, rates["nngraph"]["median"], rates[best]["median"]


def bench_train(case: str, backend: str, s: bt.Settings) -> dict:
    batch = bc.TRAIN_BATCH[case]
    rates, check = train_rates(case, backend, batch, s)
    entry, ours, theirs = _train_entry(
        rates, check, batch=batch,
        what=f"training samples/s, batch {batch}, SGD lr {bc.LR} momentum {bc.MOMENTUM}")
    entry["ratio_nngraph_over_torch"] = ours / theirs
    targets = CUDA_TRAIN_TARGETS if backend == "cuda" else TRAIN_TARGETS
    return {f"{case}.train": _target(entry, "ratio_nngraph_over_torch", targets[case])}


def bench_flops(backend: str, s: bt.Settings, gemm: dict) -> dict:
    rates, check = train_rates("mlp", backend, bc.FLOPS_BATCH, s)
    entry, ours, theirs = _train_entry(
        rates, check, batch=bc.FLOPS_BATCH,
        what="MLP training FLOP rate at batch 256 against numpy's 1024^3 GEMM")
    entry.update({
        "flops_per_sample": bc.MLP_TRAIN_FLOPS, "formula": bc.MLP_FLOPS_FORMULA,
        "nngraph_gflops": ours * bc.MLP_TRAIN_FLOPS / 1e9,
        "torch_gflops": theirs * bc.MLP_TRAIN_FLOPS / 1e9,
        "numpy_gemm_gflops": gemm["gflops"],
        "ratio_nngraph_gflops_over_gemm": ours * bc.MLP_TRAIN_FLOPS / 1e9 / gemm["gflops"],
        "needed_flops_per_sample": bc.MLP_TRAIN_FLOPS_NEEDED,
        "needed_note": "without the first layer's input gradient, which no step needs",
        "ratio_nngraph_needed_gflops_over_gemm":
            ours * bc.MLP_TRAIN_FLOPS_NEEDED / 1e9 / gemm["gflops"]})
    return {"mlp.flops": _target(entry, "ratio_nngraph_gflops_over_gemm", FLOPS_TARGET)}


# ------------------------------------------------------------------------ inference
def bench_infer(case: str, backend: str, s: bt.Settings) -> dict:
    """Batch-1 latency and batch-256 throughput of nngraph and its peers: on the CPU,
    torch and ONNX Runtime (one session exported per batch size, static shapes), the
    targets against ONNX Runtime; with --backend cuda, PyTorch CUDA eager, the target its
    batch-1 latency. Every call takes host arrays and returns host arrays, the peer's too
    (on the GPU it copies the batch in and the output back, as nngraph's predict does).
    nngraph runs twice: the Model itself (`{case}.infer_b*`), whose parameters may be
    edited in place between calls, and the predict-only copy of Model.freeze()
    (`{case}.infer_b*_frozen`), whose weights are constants as an ONNX Runtime session's
    are, so that its dense layers multiply by weights packed once. Each peer runs at each
    thread count; both nngraph entries are compared with the same best of each peer."""
    model = _compile(case, backend)
    frozen = model.freeze()
    module = peers.torch_model(case, model.params)
    torch_predict = peers.torch_predictor(module)
    scopes = torch_scopes()
    name = bc.INPUT[case]
    on_cpu = not peers.GPU_PEER
    others = ("onnxruntime", "torch") if on_cpu else ("torch",)
    out = {}
    for batch in bc.INFER_BATCHES:
        xs = [b[name] for b in bc.make_batches(case, batch, 1 if batch == 1 else POOL, seed=2)]
        txs = [peers.to_torch({name: x}, "cpu")[name] for x in xs]
        sessions = peers.ort_sessions(module, xs[0], name) if on_cpu else {}
        fns = {"nngraph": lambda x: model.predict({name: x}),
               "nngraph_frozen": lambda x: frozen.predict({name: x}),
               **{v: sessions[n] for v, n in peers.variants("onnxruntime").items() if on_cpu},
               **{v: torch_predict for v in peers.variants("torch")}}
        inputs = {k: txs if k.startswith("torch") else xs for k in fns}
        diffs = bt.agree(case, fns, inputs, scopes)
        if batch == 1:
            lat = bt.latency(fns, {k: v[0] for k, v in inputs.items()}, s, scopes)
        else:
            rates = bt.throughput(fns, inputs, batch, s, scopes)
        for who, suffix in (("nngraph", ""), ("nngraph_frozen", "_frozen")):
            entry = {"batch": batch, "executor": type(model.executor).__name__,
                     "model": "Model.freeze()" if suffix else "Model",
                     "max_abs_diff": diffs}
            if batch == 1:
                entry["what"] = "batch-1 predict latency, median over individually timed calls"
                entry["nngraph_latency_us"] = lat[who]["median_s"] * 1e6
                entry["nngraph_p90_latency_us"] = lat[who]["p90_s"] * 1e6
                entry["calls"] = lat[who]["calls"]
                for peer in others:
                    best = _peer_fields(entry, lat, peer, "latency_us", "median_s", 1e6, min)
                    entry[f"{peer}_p90_latency_us"] = lat[best]["p90_s"] * 1e6
                    entry[f"ratio_{peer}_over_nngraph_latency"] = (lat[best]["median_s"] /
                                                                   lat[who]["median_s"])
                out[f"{case}.infer_b1{suffix}"] = _target(
                    entry, f"ratio_{others[0]}_over_nngraph_latency", 1.0)
            else:
                entry["what"] = f"batch-{batch} predict samples/s"
                entry["nngraph_samples_per_s"] = rates[who]["median"]
                for peer in others:
                    best = _peer_fields(entry, rates, peer, "samples_per_s", "median", 1.0, max)
                    entry[f"ratio_nngraph_over_{peer}"] = (rates[who]["median"] /
                                                           rates[best]["median"])
                # on the GPU the target is batch-1 latency; throughput is reported
                out[f"{case}.infer_b{batch}{suffix}"] = _target(
                    entry, f"ratio_nngraph_over_{others[0]}", 1.0 if on_cpu else None)
    return out


# ------------------------------------------------------------------------ compile
def bench_compile(backend: str, s: bt.Settings) -> dict:
    cfg = {"spec": bc.LENET, "backend": backend, "batch": bc.TRAIN_BATCH["lenet"],
           "input": "image", "sample_shape": list(bc.SAMPLE_SHAPE["lenet"])}
    colds, warms = bt.compile_times(cfg, s)
    definition = ("compile() + first train_step + first predict (batch 64) - one steady "
                  "train_step and predict, in a fresh process after importing numpy and "
                  "numba and initialising numba (seconds_with_numba_init adds that "
                  "initialisation); NNGRAPH_CACHE_DIR and NUMBA_CACHE_DIR empty for each "
                  "cold run, reused warm; the median run of each kind is reported")

    def median_run(runs, kind):
        middle = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        return _target({"what": definition, "seconds": middle["seconds"],
                        "seconds_with_numba_init": middle["seconds_with_numba_init"],
                        "runs": [r["seconds"] for r in runs], "detail": middle},
                       "seconds", maximum=COMPILE_TARGETS[kind])

    return {"lenet.compile_cold": median_run(colds, "cold"),
            "lenet.compile_warm": median_run(warms, "warm")}


# ------------------------------------------------------------------------ the run
def run(groups: list[str], backend: str, s: bt.Settings, log=None, load: int = 0) -> dict:
    """Measure the chosen groups beside `load` busy processes; returns the JSON document as
    a dict. A group that fails is recorded with its error (pass false) and the others
    still run."""
    peers.use_threads()
    doc = {"tool": "tools/bench.py", "backend": backend, "settings": s.__dict__,
           "load": load, "peer_threads": list(peers.PEER_THREADS),
           "machine": bench_machine.describe(),
           "better_when": "every ratio_* > 1 means nngraph is better", "cases": {}}
    if log:
        log(f"bench: {bench_machine.summary(doc['machine'], load)}")
    gemm = None
    with bench_load.BusyLoad(load) as busy:
        for group in groups:
            if log:
                log(f"bench: {group} ...")
            try:
                entries, gemm = _measure(group, backend, s, gemm)
            except Exception as exc:         # record it, keep measuring the rest
                if log:
                    log(traceback.format_exc())
                entries = {group: {"error": f"{type(exc).__name__}: {exc}", "pass": False}}
            doc["cases"].update(entries)
        doc["machine"]["load_average"]["end"] = bench_machine.load_average()
    doc["busy_processes"] = busy.record()
    if gemm is not None:
        doc["numpy_gemm"] = gemm
    results = doc["cases"]
    for entry in results.values():
        ran = entry.get("executor") or entry.get("detail", {}).get("executor")
        if backend != "reference" and ran == "ReferenceExecutor":
            entry["fell_back_to_reference"] = True       # not the backend asked for
            entry["pass"] = False
    doc["summary"] = {"passed": sorted(k for k, v in results.items() if v["pass"]),
                      "failed": sorted(k for k, v in results.items() if not v["pass"]),
                      "errors": sorted(k for k, v in results.items() if "error" in v)}
    doc["summary"]["all_pass"] = not doc["summary"]["failed"]
    return doc


def _measure(group: str, backend: str, s: bt.Settings, gemm: dict | None):
    """(entries of one group, numpy's GEMM rate once measured)."""
    net, _, kind = group.partition(".")
    if group == "zoo":                  # it shares _target and _peer_fields
        return bench_zoo.bench_zoo(backend, s, sys.modules[__name__]), gemm
    if group == "dist":
        return bench_dist.bench_dist(backend, s), gemm
    if kind == "train":
        return bench_train(net, backend, s), gemm
    if kind == "infer":
        return bench_infer(net, backend, s), gemm
    if kind == "flops":
        gemm = gemm or bt.gemm_gflops(s)
        return bench_flops(backend, s, gemm), gemm
    return bench_compile(backend, s), gemm


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--backend", default="cpu", choices=("cpu", "reference", "cuda"))
    ap.add_argument("--cases", help=f"comma-separated: {', '.join(GROUPS + OPT_IN)}, "
                                    "or a network (mlp) or kind (train); default all but zoo and dist")
    ap.add_argument("--quick", action="store_true", help="fewer, shorter repeats (smoke run)")
    ap.add_argument("--load", type=int, default=0, metavar="N",
                    help="run N busy single-threaded processes beside the benchmark")
    ap.add_argument("--out", help="also write the JSON document to this file")
    args = ap.parse_args(argv)
    if args.load < 0:
        ap.error("--load takes a count of busy processes, 0 or more")
    if args.backend == "cuda":
        peers.use_cuda()                # or a one-line exit: no GPU for the peer
        if args.cases is None:
            args.cases = "train,infer"  # the FLOP rate and the compile are the CPU's
    doc = run(select(args.cases), args.backend, bt.QUICK if args.quick else bt.FULL,
              log=lambda m: print(m, file=sys.stderr, flush=True), load=args.load)
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 2 if doc["summary"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
