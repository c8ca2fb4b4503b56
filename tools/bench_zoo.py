"""The `zoo` case of tools/bench.py: imported ONNX networks against ONNX Runtime running the
same file. Issue 23 asks for the compile time and the batch-1 / batch-16 predict time of the
imported ResNet-50 and GoogLeNet; it sets no targets, so the entries are reports (pass is
true), except a network nngraph cannot import yet, whose entry says why (pass false).

The networks are the onnx wheel's own test models (onnx/backend/test/data/light/): no
download. Their weights are constants (every one 0.02, which is why the files are small), so
the predictions are near uniform and agreeing on them checks little beyond the shapes; the
work per call is the real network's. ResNet-50 is ~4 GFLOP per sample, so the repeats are
cut down from the other cases' (zoo_settings).
"""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

import bench_timing as bt
import peers

MODELS = (("resnet50", "light_resnet50.onnx"), ("googlenet", "light_inception_v1.onnx"))
"""(name, file): a file name is looked up in the onnx wheel's light/ folder."""
BATCHES = (1, 16)
POOL = 2                       # distinct batch-16 inputs cycled (10 MB each for ResNet-50)


def data_dir() -> str:
    import onnx
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def zoo_settings(s: bt.Settings) -> bt.Settings:
    """The run's settings cut to what a ~0.1-3 s call affords: at FULL, ResNet-50 would
    otherwise warm up for 10 batch-16 calls and time 5 x 400 batch-1 calls, ~10 minutes;
    this keeps the case near a minute and a half (FULL: 3 repeats, 10 timed batch-1 calls
    each) or half a minute (QUICK: 1 repeat)."""
    return dataclasses.replace(s, warmup_steps=min(s.warmup_steps, 1),
                               repeats=max(1, (s.repeats + 1) // 2),
                               min_time_s=min(s.min_time_s, 1.0),
                               latency_calls=max(1, s.latency_calls // 40))


def bench_zoo(backend: str, s: bt.Settings, bench) -> dict:
    """Entries of every network of MODELS: `zoo.<name>.compile`, `.infer_b1`, `.infer_b16`,
    or `zoo.<name>` alone when it cannot be imported (`unsupported`) or fails (`error`),
    the other networks still measured. `bench` is the calling tools/bench.py module, whose
    _target and _peer_fields the entries share (it may run as __main__, so this
    module does not import it)."""
    out = {}
    for name, file in MODELS:
        path = os.path.join(data_dir(), file)
        try:
            out.update(_one(name, path, backend, zoo_settings(s), bench))
        except Exception as exc:         # recorded; the other networks still run
            from nngraph.onnx import OnnxImportError
            key = "unsupported" if isinstance(exc, OnnxImportError) else "error"
            message = str(exc) if key == "unsupported" else f"{type(exc).__name__}: {exc}"
            out[f"zoo.{name}"] = {"file": os.path.basename(path), key: message, "pass": False}
    return out


def _one(name: str, path: str, backend: str, s: bt.Settings, bench) -> dict:
    """The three entries of one network; raises OnnxImportError when it cannot be imported."""
    import onnx

    import nngraph
    from nngraph.onnx.fold import data_inputs
    proto = onnx.load(path)
    (graph_input,) = data_inputs(proto.graph)
    dims = [d.dim_value or 1 for d in graph_input.type.tensor_type.shape.dim]
    start = time.perf_counter()
    model = nngraph.import_onnx(path, backend=backend, dtype="float32")
    imported = time.perf_counter()
    feed = model.net.feature_inputs[0]
    rng = np.random.default_rng(2)
    x = rng.standard_normal([1, *dims[1:]]).astype(np.float32)
    model.predict({feed: x})
    first = time.perf_counter()
    out = {f"zoo.{name}.compile": bench._target({
        "what": "nngraph.import_onnx (read, convert, compile) + the first batch-1 predict, "
                "in the benchmark's process, with whatever NNGRAPH_CACHE_DIR and "
                "NUMBA_CACHE_DIR hold", "file": os.path.basename(path), "backend": backend,
        "compile_s": first - start, "import_s": imported - start,
        "first_predict_s": first - imported, "executor": type(model.executor).__name__},
        "compile_s")}
    for batch in BATCHES:
        xs = [x] if batch == 1 else [rng.standard_normal([batch, *dims[1:]]).astype(np.float32)
                                     for _ in range(POOL)]
        out[f"zoo.{name}.infer_b{batch}"] = _infer(name, path, proto, model, feed, xs, s,
                                                   bench)
    return out


def _infer(name: str, path: str, proto, model, feed: str, xs: list, s: bt.Settings,
           bench) -> dict:
    """One batch size: nngraph's predict against ORT sessions of the file at each thread
    count, predictions compared first (bench_timing.agree) on xs[0]."""
    batch = xs[0].shape[0]
    sessions = ort_sessions(path, proto, batch)
    fns = {"nngraph": lambda x: model.predict({feed: x}),
           **{v: sessions[n] for v, n in peers.variants("onnxruntime").items()}}
    inputs = {k: xs for k in fns}
    entry = {"file": os.path.basename(path), "batch": batch,
             "executor": type(model.executor).__name__,
             "max_abs_diff": bt.agree(f"zoo.{name}", fns, inputs, {}),
             "ort_file": "the original file" if _file_batch(proto) in (None, batch) else
             f"the original file with its batch dimension set to {batch}"}
    if batch == 1:
        lat = bt.latency(fns, {k: v[0] for k, v in inputs.items()}, s)
        entry["what"] = "batch-1 predict latency, median over individually timed calls"
        entry["nngraph_latency_us"] = lat["nngraph"]["median_s"] * 1e6
        entry["calls"] = lat["nngraph"]["calls"]
        best = bench._peer_fields(entry, lat, "onnxruntime", "latency_us", "median_s", 1e6,
                                  min)
        entry["ratio_onnxruntime_over_nngraph_latency"] = (lat[best]["median_s"] /
                                                           lat["nngraph"]["median_s"])
        return bench._target(entry, "ratio_onnxruntime_over_nngraph_latency")
    rates = bt.throughput(fns, inputs, batch, s)
    entry["what"] = f"batch-{batch} predict samples/s"
    entry["nngraph_samples_per_s"] = rates["nngraph"]["median"]
    entry["nngraph_repeats"] = rates["nngraph"]["repeats"]
    best = bench._peer_fields(entry, rates, "onnxruntime", "samples_per_s", "median", 1.0, max)
    entry["ratio_nngraph_over_onnxruntime"] = (rates["nngraph"]["median"] /
                                               rates[best]["median"])
    return bench._target(entry, "ratio_nngraph_over_onnxruntime")


def _file_batch(proto) -> int | None:
    """The fixed batch size of the file's input, None when it is symbolic."""
    from nngraph.onnx.fold import data_inputs
    return data_inputs(proto.graph)[0].type.tensor_type.shape.dim[0].dim_value or None


def ort_sessions(path: str, proto, batch: int) -> dict:
    """{threads: predict(x)}: ONNX Runtime sessions of the file at each of PEER_THREADS.
    A file made for one fixed batch size (ResNet-50's is 1, its Reshape target [1, 2048])
    is opened for another with that size replaced by `batch` in the input, the outputs
    and the Reshape targets that hold it, which is how nngraph's import reads it."""
    source = path
    fixed = _file_batch(proto)
    if fixed is not None and fixed != batch:
        source = _at_batch(proto, fixed, batch).SerializeToString()
    sessions = {n: peers._ort_open(source, n) for n in peers.PEER_THREADS}

    def predictor(session):
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    return {n: predictor(sess) for n, sess in sessions.items()}


def _at_batch(proto, fixed: int, batch: int):
    """A copy of `proto` whose batch dimension `fixed` is `batch`."""
    import onnx
    from onnx import numpy_helper

    from nngraph.onnx.fold import data_inputs
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    for v in [*data_inputs(m.graph), *m.graph.output]:
        dims = v.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_value == fixed:
            dims[0].dim_value = batch
    del m.graph.value_info[:]
    targets = {n.input[1] for n in m.graph.node if n.op_type == "Reshape"}
    for i, init in enumerate(m.graph.initializer):
        if init.name in targets:
            shape = numpy_helper.to_array(init).copy()
            if shape.size and shape[0] == fixed:
                shape[0] = batch
                m.graph.initializer[i].CopyFrom(numpy_helper.from_array(shape, init.name))
    return m
