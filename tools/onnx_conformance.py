"""How much of the onnx package's own test data nngraph imports: every case of
onnx/backend/test/data/ pytorch-converted/, pytorch-operator/ and light/ (and node/ and
simple/ where this installation has them), imported with nngraph.import_onnx, run on the
stored inputs and compared with the stored outputs (within 1e-4 of the largest output).
light/ models store no inputs: they are run on a random input and compared with ONNX
Runtime's predictions on it.

    python tools/onnx_conformance.py                 # the markdown table (docs/onnx.md)
    python tools/onnx_conformance.py --passing FILE  # also write the passing cases, one a line

Each case is `pass`, `fails: reason` (imported, but the predictions differ or nngraph
refused the data) or `unsupported: operator` (the import refused a node: the operator, and
why). Models with more than --max-mb of weights are imported but not run.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TOLERANCE = 1e-4
FOLDERS = ("pytorch-converted", "pytorch-operator", "light", "node", "simple")


def data_dir() -> str:
    import onnx
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


def cases(folders=FOLDERS) -> list:
    """[(case name 'folder/test_x', model path)], sorted."""
    root, out = data_dir(), []
    for folder in folders:
        top = os.path.join(root, folder)
        if not os.path.isdir(top):
            continue
        if folder == "light":
            out += [(f"light/{os.path.basename(p)[:-5]}", p)
                    for p in sorted(glob.glob(os.path.join(top, "*.onnx")))]
        else:
            out += [(f"{folder}/{d}", os.path.join(top, d, "model.onnx"))
                    for d in sorted(os.listdir(top))
                    if os.path.isfile(os.path.join(top, d, "model.onnx"))]
    return out


def _read_tensors(folder: str, prefix: str) -> list:
    import onnx
    from onnx import numpy_helper
    files = sorted(glob.glob(os.path.join(folder, f"{prefix}_*.pb")),
                   key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
    out = []
    for p in files:
        t = onnx.TensorProto()
        with open(p, "rb") as f:
            t.ParseFromString(f.read())
        out.append(numpy_helper.to_array(t))
    return out


def _compare(got, want) -> str | None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return f"output shape {got.shape}, expected {want.shape}"
    scale = max(float(np.abs(want).max()) if want.size else 0.0, 1e-12)
    err = float(np.abs(got - want).max()) if want.size else 0.0
    return None if err <= TOLERANCE * scale else f"off by {err / scale:.2g} of the largest output"


def _feeds_and_wants(path, model_proto, net):
    """Stored inputs and outputs; for light/ models a random input and ONNX Runtime's."""
    from nngraph.onnx.fold import data_inputs
    names = [v.name for v in data_inputs(model_proto.graph)]
    sets = sorted(glob.glob(os.path.join(os.path.dirname(path), "test_data_set_*")))
    if sets:
        ins, outs = _read_tensors(sets[0], "input"), _read_tensors(sets[0], "output")
        return dict(zip(names, ins)), outs
    import onnxruntime as ort
    rng = np.random.default_rng(0)
    feeds = {}
    for v in data_inputs(model_proto.graph):
        dims = [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
        feeds[v.name] = rng.standard_normal(dims).astype(np.float32)
    session = ort.InferenceSession(model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return feeds, session.run(None, feeds)


def run_case(path: str, max_mb: float = 200.0) -> str:
    """'pass', 'fails: reason' or 'unsupported: operator (why)' for one model file."""
    import onnx

    import nngraph
    from nngraph.onnx import OnnxImportError
    try:
        proto = onnx.load(path)
        model = nngraph.import_onnx(path, backend="reference")
    except OnnxImportError as e:
        return f"unsupported: {e.op_type}" + (f" ({e.reason})" if e.reason else "") \
            if e.op_type else f"fails: {e}"
    except nngraph.NNGraphError as e:
        return f"fails: the imported spec is refused: {str(e).splitlines()[0]}"
    except Exception as e:               # a bug in the import
        return f"fails: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    mb = sum(v.nbytes for v in model.params.values()) / 1e6
    if mb > max_mb:
        return f"fails: not run, {mb:.0f} MB of weights (over --max-mb)"
    try:
        feeds, wants = _feeds_and_wants(path, proto, model.net)
        inputs = dict(zip(list(model.net.inputs), feeds.values()))
        got = model.predict(inputs)
    except nngraph.NNGraphError as e:
        return f"fails: {str(e).splitlines()[0]}"
    except Exception as e:
        return f"fails: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return compare_outputs(model, got, wants) or "pass"


def compare_outputs(model, got, wants) -> str | None:
    """'fails: why' when predict's `got` differs from `wants` (a list, in the network's
    output order), else None; tools/onnx_node_cases.py judges its cases with it too."""
    got = [got[o] for o in model.net.outputs] if isinstance(got, dict) else [got]
    if len(got) != len(wants):
        return f"fails: {len(got)} outputs, expected {len(wants)}"
    for g, w in zip(got, wants):
        why = _compare(g, w)
        if why:
            return f"fails: {why}"
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passing", metavar="FILE", help="write the passing cases here")
    p.add_argument("--max-mb", type=float, default=200.0,
                   help="run models with at most this many MB of weights (default 200)")
    args = p.parse_args(argv)
    rows = [(name, run_case(path, args.max_mb)) for name, path in cases()]
    print("| case | result |\n|---|---|")
    for name, result in rows:
        print(f"| {name} | {result.replace('|', '/')} |")
    passed = [n for n, r in rows if r == "pass"]
    print(f"\n{len(passed)} of {len(rows)} pass; "
          f"{sum(r.startswith('unsupported') for _, r in rows)} unsupported, "
          f"{sum(r.startswith('fails') for _, r in rows)} fail.")
    if args.passing:
        with open(args.passing, "w") as f:
            f.write("".join(n + "\n" for n in passed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
