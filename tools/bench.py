"""nngraph against PyTorch eager and ONNX Runtime: one process, the same data, the same
initial weights; prints one JSON document of raw numbers, ratios, targets and pass/fail.

    python tools/bench.py                                  # everything, cpu backend
    python tools/bench.py --backend reference --quick      # smoke run of the tool itself
    python tools/bench.py --cases mlp,lstm.train --out bench.json

Cases (a selector picks a group by its full name, its network or its kind):
    mlp.train  lenet.train  lstm.train   training samples/s vs torch (targets 3x, 2x, 1.5x)
    mlp.infer  lenet.infer               batch-1 latency and batch-256 samples/s vs ONNX Runtime,
                                         of the Model and of its Model.freeze() copy
    mlp.flops                            MLP training at batch 256 as a fraction of numpy's
                                         1024^3 float32 GEMM rate (target 60%)
    lenet.compile                        train + predict compile time, cold and in a second
                                         process (targets 5 s and 0.5 s; medians of 3 runs)

Every ratio is named for what it divides and is > 1 when nngraph is better: throughput is
nngraph / peer, latency is peer / nngraph. Before anything is timed, the first training
losses of nngraph and torch must agree to 1e-4 (relative), and predictions of nngraph,
torch and ONNX Runtime must agree, so that every comparison is of the same computation.
A case that ran on the reference interpreter when another backend was asked for fails
(`fell_back_to_reference`). Exit status 2 when a case could not be measured (its `error`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_cases as bc          # noqa: E402
import bench_timing as bt         # noqa: E402
import nngraph                    # noqa: E402
# nngraph's kernels load before PyTorch, as in a process that runs nngraph alone: MKL then
# takes its own Intel OpenMP threads. With PyTorch's GNU OpenMP loaded first, MKL runs on
# that instead and nngraph keeps its update off MKL's threads (kernels/cpu/team.py).
from nngraph.kernels.cpu import team  # noqa: E402,F401
import peers                      # noqa: E402

GROUPS = ("mlp.train", "mlp.infer", "mlp.flops", "lenet.train", "lenet.infer",
          "lenet.compile", "lstm.train")
TRAIN_TARGETS = {"mlp": 3.0, "lenet": 2.0, "lstm": 1.5}
FLOPS_TARGET = 0.6
COMPILE_TARGETS = {"cold": 5.0, "warm": 0.5}
LOSS_RTOL = 1e-4
POOL = 8                          # distinct batches each loop cycles through


def select(cases: str | None) -> list[str]:
    """Groups matching comma-separated selectors: 'mlp', 'train', 'lenet.infer', 'compile'."""
    if not cases:
        return list(GROUPS)
    wanted = [c.strip() for c in cases.split(",") if c.strip()]
    unknown = [c for c in wanted if not any(_matches(g, c) for g in GROUPS)]
    if unknown:
        raise SystemExit(f"bench: unknown case(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(GROUPS)} or their parts")
    return [g for g in GROUPS if any(_matches(g, c) for c in wanted)]


def _matches(group: str, selector: str) -> bool:
    net, kind = group.split(".")
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


# ------------------------------------------------------------------------ training
def loss_check(case: str, model, trainer, batches: list, tbatches: list, steps: int = 3):
    """Train both from the same weights on the same batches; the first losses must agree to
    LOSS_RTOL. Later steps also check the gradients and the momentum update, reported."""
    ours = [model.train_step(b) for b in batches[:steps]]
    theirs = [trainer(b) for b in tbatches[:steps]]
    diffs = [rel_diff(a, b) for a, b in zip(ours, theirs)]
    if not diffs[0] <= LOSS_RTOL:
        raise AssertionError(f"{case}: first-step losses differ: nngraph {ours[0]!r}, torch "
                             f"{theirs[0]!r} (relative {diffs[0]:.2e} > {LOSS_RTOL:g})")
    return {"nngraph": ours, "torch": theirs, "rel_diff": diffs}


def train_rates(case: str, backend: str, batch: int, s: bt.Settings) -> tuple[dict, dict]:
    """(samples/s of nngraph and torch, loss check) for one network at one batch size."""
    model = _compile(case, backend)
    trainer = peers.TorchTrainer(peers.torch_model(case, model.params), bc.INPUT[case],
                                 bc.LR, bc.MOMENTUM)
    batches = bc.make_batches(case, batch, POOL, seed=1)
    tbatches = [peers.to_torch(b) for b in batches]
    check = loss_check(case, model, trainer, batches, tbatches)
    rates = bt.throughput({"nngraph": model.train_step, "torch": trainer},
                          {"nngraph": batches, "torch": tbatches}, batch, s)
    rates["executor"] = type(model.executor).__name__
    return rates, check


def bench_train(case: str, backend: str, s: bt.Settings) -> dict:
    batch = bc.TRAIN_BATCH[case]
    rates, check = train_rates(case, backend, batch, s)
    entry = {"what": f"training samples/s, batch {batch}, SGD lr {bc.LR} momentum {bc.MOMENTUM}",
             "batch": batch, "executor": rates["executor"],
             "nngraph_samples_per_s": rates["nngraph"]["median"],
             "torch_samples_per_s": rates["torch"]["median"],
             "nngraph_repeats": rates["nngraph"]["repeats"],
             "torch_repeats": rates["torch"]["repeats"],
             "ratio_nngraph_over_torch": rates["nngraph"]["median"] / rates["torch"]["median"],
             "loss_check": check}
    return {f"{case}.train": _target(entry, "ratio_nngraph_over_torch", TRAIN_TARGETS[case])}


def bench_flops(backend: str, s: bt.Settings, gemm: dict) -> dict:
    rates, check = train_rates("mlp", backend, bc.FLOPS_BATCH, s)
    ours, theirs = rates["nngraph"]["median"], rates["torch"]["median"]
    entry = {"what": "MLP training FLOP rate at batch 256 against numpy's 1024^3 GEMM",
             "batch": bc.FLOPS_BATCH, "executor": rates["executor"],
             "flops_per_sample": bc.MLP_TRAIN_FLOPS, "formula": bc.MLP_FLOPS_FORMULA,
             "nngraph_samples_per_s": ours, "torch_samples_per_s": theirs,
             "nngraph_gflops": ours * bc.MLP_TRAIN_FLOPS / 1e9,
             "torch_gflops": theirs * bc.MLP_TRAIN_FLOPS / 1e9,
             "numpy_gemm_gflops": gemm["gflops"],
             "ratio_nngraph_gflops_over_gemm": ours * bc.MLP_TRAIN_FLOPS / 1e9 / gemm["gflops"],
             "needed_flops_per_sample": bc.MLP_TRAIN_FLOPS_NEEDED,
             "needed_note": "without the first layer's input gradient, which no step needs",
             "ratio_nngraph_needed_gflops_over_gemm":
                 ours * bc.MLP_TRAIN_FLOPS_NEEDED / 1e9 / gemm["gflops"],
             "loss_check": check}
    return {"mlp.flops": _target(entry, "ratio_nngraph_gflops_over_gemm", FLOPS_TARGET)}


# ------------------------------------------------------------------------ inference
def bench_infer(case: str, backend: str, s: bt.Settings) -> dict:
    """Batch-1 latency and batch-256 throughput of nngraph, torch and ONNX Runtime (one
    session exported per batch size, static shapes); the targets are against ONNX Runtime.
    nngraph runs twice: the Model itself (`{case}.infer_b*`), whose parameters may be
    edited in place between calls, and the predict-only copy of Model.freeze()
    (`{case}.infer_b*_frozen`), whose weights are constants as an ONNX Runtime session's
    are, so that its dense layers multiply by weights packed once."""
    model = _compile(case, backend)
    frozen = model.freeze()
    module = peers.torch_model(case, model.params)
    torch_predict = peers.torch_predictor(module)
    name = bc.INPUT[case]
    out = {}
    for batch in bc.INFER_BATCHES:
        xs = [b[name] for b in bc.make_batches(case, batch, 1 if batch == 1 else POOL, seed=2)]
        ort_predict = peers.ort_session(module, xs[0], name)
        fns = {"nngraph": lambda x: model.predict({name: x}),
               "nngraph_frozen": lambda x: frozen.predict({name: x}),
               "onnxruntime": ort_predict, "torch": torch_predict}
        inputs = {"nngraph": xs, "nngraph_frozen": xs, "onnxruntime": xs,
                  "torch": [peers.to_torch({name: x})[name] for x in xs]}
        ours = fns["nngraph"](xs[0])
        diffs = {"onnxruntime": float(np.abs(ours - ort_predict(xs[0])).max()),
                 "torch": float(np.abs(ours - torch_predict(inputs["torch"][0]).numpy()).max()),
                 "nngraph_frozen": float(np.abs(ours - fns["nngraph_frozen"](xs[0])).max())}
        scale = float(np.abs(ours).max())
        for peer, d in diffs.items():
            if not d <= 1e-4 * max(1.0, scale):
                raise AssertionError(f"{case}: predictions differ from {peer} by {d:.2e}")
        if batch == 1:
            lat = bt.latency(fns, {k: v[0] for k, v in inputs.items()}, s)
        else:
            rates = bt.throughput(fns, inputs, batch, s)
        for who, suffix in (("nngraph", ""), ("nngraph_frozen", "_frozen")):
            entry = {"batch": batch, "executor": type(model.executor).__name__,
                     "model": "Model.freeze()" if suffix else "Model",
                     "max_abs_diff": diffs}
            if batch == 1:
                entry["what"] = "batch-1 predict latency, median over individually timed calls"
                for k in (who, "onnxruntime", "torch"):
                    key = "nngraph" if k == who else k
                    entry[f"{key}_latency_us"] = lat[k]["median_s"] * 1e6
                    entry[f"{key}_p90_latency_us"] = lat[k]["p90_s"] * 1e6
                entry["calls"] = lat[who]["calls"]
                for peer in ("onnxruntime", "torch"):
                    entry[f"ratio_{peer}_over_nngraph_latency"] = (lat[peer]["median_s"] /
                                                                   lat[who]["median_s"])
                out[f"{case}.infer_b1{suffix}"] = _target(
                    entry, "ratio_onnxruntime_over_nngraph_latency", 1.0)
            else:
                entry["what"] = f"batch-{batch} predict samples/s"
                for k in (who, "onnxruntime", "torch"):
                    key = "nngraph" if k == who else k
                    entry[f"{key}_samples_per_s"] = rates[k]["median"]
                for peer in ("onnxruntime", "torch"):
                    entry[f"ratio_nngraph_over_{peer}"] = (rates[who]["median"] /
                                                           rates[peer]["median"])
                out[f"{case}.infer_b{batch}{suffix}"] = _target(
                    entry, "ratio_nngraph_over_onnxruntime", 1.0)
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
def machine() -> dict:
    import numba
    import onnx
    import onnxruntime
    import torch
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]
    except (AttributeError, KeyError, TypeError):
        blas = "unknown"
    return {"cpu_count": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "machine": platform.machine(), "processor": platform.processor() or None,
            "system": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "numpy_blas": blas, "numba": numba.__version__,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
            "onnxruntime_threads": peers.THREADS, "nngraph": nngraph.__version__,
            "nngraph_blas": _nngraph_blas(),
            "load_before": _load()}


def _nngraph_blas() -> str:
    from nngraph.kernels.cpu.blas import PROVIDER
    return PROVIDER


def _load():
    """The 1-minute load average: above ~0.5 other work shared the 2 cores while measuring,
    and torch (whose OpenMP barriers wait for descheduled threads) suffers most."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def run(groups: list[str], backend: str, s: bt.Settings, log=None) -> dict:
    """Measure the chosen groups; returns the JSON document as a dict. A group that fails
    is recorded with its error (pass false) and the others still run."""
    peers.use_threads()
    doc = {"tool": "tools/bench.py", "backend": backend, "settings": s.__dict__,
           "machine": machine(), "better_when": "every ratio_* > 1 means nngraph is better",
           "cases": {}}
    gemm = None
    for group in groups:
        if log:
            log(f"bench: {group} ...")
        net, kind = group.split(".")
        try:
            if kind == "train":
                entries = bench_train(net, backend, s)
            elif kind == "infer":
                entries = bench_infer(net, backend, s)
            elif kind == "flops":
                gemm = gemm or bt.gemm_gflops(s)
                entries = bench_flops(backend, s, gemm)
            else:
                entries = bench_compile(backend, s)
        except Exception as exc:         # record it, keep measuring the rest
            if log:
                log(traceback.format_exc())
            entries = {group: {"error": f"{type(exc).__name__}: {exc}", "pass": False}}
        doc["cases"].update(entries)
    if gemm is not None:
        doc["numpy_gemm"] = gemm
    results = doc["cases"]
    for entry in results.values():
        ran = entry.get("executor") or entry.get("detail", {}).get("executor")
        if backend != "reference" and ran == "ReferenceExecutor":
            entry["fell_back_to_reference"] = True       # not the backend asked for
            entry["pass"] = False
    doc["machine"]["load_average_1min"] = {"before": doc["machine"].pop("load_before"),
                                           "after": _load()}
    doc["summary"] = {"passed": sorted(k for k, v in results.items() if v["pass"]),
                      "failed": sorted(k for k, v in results.items() if not v["pass"]),
                      "errors": sorted(k for k, v in results.items() if "error" in v)}
    doc["summary"]["all_pass"] = not doc["summary"]["failed"]
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--backend", default="cpu", choices=("cpu", "reference", "cuda"))
    ap.add_argument("--cases", help=f"comma-separated: {', '.join(GROUPS)}, "
                                    "or a network (mlp) or kind (train); default all")
    ap.add_argument("--quick", action="store_true", help="fewer, shorter repeats (smoke run)")
    ap.add_argument("--out", help="also write the JSON document to this file")
    args = ap.parse_args(argv)
    doc = run(select(args.cases), args.backend, bt.QUICK if args.quick else bt.FULL,
              log=lambda m: print(m, file=sys.stderr, flush=True))
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 2 if doc["summary"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
