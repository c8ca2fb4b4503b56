"""The commands that run networks: train, eval, predict.

    nngraph train specs/mnist_mlp.yaml --epochs 5 --out mnist.nnz
    nngraph train specs/mnist_mlp.yaml --resume mnist.nnz          # continue where it stopped
    nngraph eval mnist.nnz                                          # on the held-out split
    nngraph predict mnist.nnz --input digits.npz -o predictions.csv
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from .epoch_samples import epoch_samples
from .errors import DataError, ModelFileError, NNGraphError
from .progress import Spinner

BACKENDS = ("cpu", "reference", "cuda")


def _positive(kind):
    """An argparse type: a finite number of `kind` above 0 (--lr, --epochs, --batch-size),
    refused with argparse's usage message, never saved into a model file."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") \
                from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def cmd_train(args) -> int:
    from . import compile, dist, load, load_model
    world = dist.world()
    if world is not None and world.rank:       # under mpirun: rank 0 alone speaks
        sys.stdout = open(os.devnull, "w")
    net = load(args.spec)
    for w in net.warnings:
        print(w, file=sys.stderr)
    out = args.out or f"{net.name}.nnz"
    if args.resume and args.weights:
        raise NNGraphError("--weights starts training from another model's parameters; "
                           "--resume continues this one's: give one of them")
    if args.resume:
        model = load_model(args.resume, backend=args.backend, device=args.device)
        _same_network(model, net, args.resume)
        model.net.file = net.file
        print(f"resuming {args.resume} after epoch {model.epoch} (update {model.step})")
    else:
        model = compile(net, backend=args.backend, seed=args.seed, dtype=args.dtype,
                        device=args.device, weights=args.weights)
        if getattr(model, "loaded", None) is not None:
            print(model.loaded.line())
    if args.lr is not None:
        model.optimizer.config["lr"] = args.lr
    total = args.epochs if args.epochs is not None else int(net.train.get("epochs", 1))
    remaining = max(total - model.epoch, 0)
    if remaining == 0:
        print(f"nothing to do: the model has already trained {model.epoch} of {total} epochs")
        return 0
    ranks = f" x {world.size} processes (data-parallel, MPI)" if world is not None else ""
    print(f"training {net.name} ({net.num_params:,} parameters) on backend {model.backend}"
          f"{ranks}, {remaining} epoch{'s' if remaining != 1 else ''}; checkpoint {out}")
    _compile_now(model, "train")
    samples = (epoch_samples(model, args.samples)     # rank 0 alone draws under mpirun
               if args.samples and (world is None or not world.rank) else None)
    t0 = time.perf_counter()
    model.fit(epochs=remaining, batch_size=args.batch_size, checkpoint=out,
              verbose=0 if args.quiet else 1, callback=samples)
    elapsed = time.perf_counter() - t0
    last = {k: v[-1] for k, v in model.history.items()}
    shown = "  ".join(f"{k} {v:.4f}" for k, v in last.items())
    print(f"done in {elapsed:.1f}s: {shown}")
    print(f"saved {out}")
    if args.samples:
        print(f"wrote a grid of 64 generated samples per epoch to {args.samples}/epoch_NNN.png")
    return 0


def _compile_now(model, mode: str) -> None:
    """Compile the kernels of `mode` before the run, saying so where this network is
    compiled for the first time (numba: seconds, then cached), instead of a silent wait
    inside the first step."""
    executor = getattr(model, "executor", None)
    if not executor.first_time or executor.prepared(mode):
        return
    groups = executor.fused_groups
    what = f" ({groups} fused groups)" if groups else ""
    t0 = time.perf_counter()
    with Spinner(f"compiling {model.net.name} for {model.backend}{what}, first time only "
                 f"(cached after)") as spinner:
        executor.prepare(mode, model.state)
        report = executor.compile_report or {}
        kernels = len(report.get("here", [])) + len(report.get("worker", []))
        spinner.done(f"{kernels} kernels in {time.perf_counter() - t0:.1f} s")


def _same_network(model, net, path):
    want = {k: p.spec.shape for k, p in net.param_table().items()}
    have = {k: v.shape for k, v in model.params.items()}
    if want != have:
        raise ModelFileError(f"{path} was trained from a different network than {net.file}: "
                             "its parameters do not match")


def cmd_eval(args) -> int:
    from . import load_model
    model = load_model(args.model, backend=args.backend, device=args.device)
    if args.data and not os.path.exists(args.data):
        raise DataError(f"{args.data}: no such file")
    _compile_now(model, "evaluate")       # first: the data's checks compile with the rest
    data, what, names = _data_for(model, args.data, args.split)
    tally = model._evaluate(data, 256)
    metrics = tally.result()
    n = len(next(iter(data.values())))
    print(f"{model.net.name} on {what} ({n:,} samples): " +
          "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if args.confusion:
        matrices = tally.confusions()
        if not matrices:
            print(f"no confusion matrix: no loss of {model.net.name} compares classes")
        for loss, (matrix, classes) in matrices.items():
            if names and len(names) == len(classes):     # an image folder's class names
                classes = list(names)
            print(f"\nconfusion matrix of loss '{loss}' (rows: true class, columns: "
                  f"predicted)\n{format_confusion(matrix, classes)}")
    return 0


def format_confusion(matrix, classes, most: int = 30) -> str:
    """The matrix as aligned text, with each class's recall at the end of its row; past
    `most` classes, only the largest confusions are listed."""
    k = len(matrix)
    if k > most:
        off = matrix.copy()
        np.fill_diagonal(off, 0)
        flat = np.argsort(off, axis=None)[::-1][:most]
        lines = [f"{k} classes: the {most} largest confusions (true -> predicted: count)"]
        lines += [f"  {classes[i // k]} -> {classes[i % k]}: {off.flat[i]}" for i in flat
                  if off.flat[i]]
        return "\n".join(lines)
    names = [str(c) for c in classes]
    width = max(len(str(int(matrix.max()))), *map(len, names), 4)
    head = " " * (width + 2) + " ".join(f"{c:>{width}}" for c in names) + "  recall"
    rows = [head]
    for i, row in enumerate(matrix):
        total = row.sum()
        recall = f"{row[i] / total:.3f}" if total else "  -"
        rows.append(f"{names[i]:>{width}}  " + " ".join(f"{v:>{width}}" for v in row)
                    + f"  {recall:>6}")
    return "\n".join(rows)


def cmd_predict(args) -> int:
    from . import load_model
    model = load_model(args.model, backend=args.backend, device=args.device)
    if args.input:
        data, what = _read_inputs(model, args.input, labels=False), args.input
    else:
        data, what, _ = _data_for(model, None, "validation")
    _compile_now(model, "predict")
    outputs = model.predict({k: v for k, v in data.items()      # sampled ones the file
                             if k in model.net.feature_inputs     # lacks are drawn
                             or k in model.net.sampled_inputs})
    if not isinstance(outputs, dict):
        outputs = {model.net.outputs[0]: outputs}
    if args.output:
        _write_outputs(args.output, _with_classes(model.net, outputs))
        print(f"wrote {len(next(iter(outputs.values()))):,} predictions to {args.output}")
        return 0
    n = len(next(iter(outputs.values())))
    print(f"{model.net.name} on {what}: first {min(args.limit, n)} of {n:,} predictions")
    for i in range(min(args.limit, n)):
        parts = []
        for name, y in outputs.items():
            row = np.asarray(y[i])
            if row.ndim == 1 and row.size > 1:
                parts.append(f"{name}: class {int(row.argmax())} (score {row.max():.3f})")
            else:
                parts.append(f"{name}: {np.array2string(row, precision=4)}")
        print(f"  [{i}] " + "  ".join(parts))
    return 0


def _data_for(model, path, split):
    """Evaluation data: a file, or a split of the spec's own train.data; (arrays, what they
    are, the class names of an image folder or None)."""
    from .data import load_splits
    if path:
        return _read_inputs(model, path), path, None
    if "data" not in model.net.train:
        raise DataError("the model's spec has no train.data; pass --data FILE")
    splits = load_splits(model.net)
    train, val, classes = splits.train, splits.validation, splits.classes
    if split == "validation" and val is not None:
        return val, "the validation split", classes
    if split == "all" and val is not None:
        return {k: np.concatenate([train[k], val[k]]) for k in train}, "all data", classes
    return train, "the training split", classes


def _read_inputs(model, path, labels: bool = True) -> dict:
    """The arrays of an input file, named after the network's inputs; `labels`: whether
    the label inputs are wanted too (eval), or only the features (predict)."""
    from .datasets import read_csv, read_npz
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if path.endswith(".npy"):
        feature = model.net.feature_inputs[0]
        return {feature: np.load(path, allow_pickle=False)}
    if path.endswith(".npz"):
        return _named(model, path, read_npz(path), labels)
    if path.endswith(".csv"):
        arrays = read_csv(path)
        named = {}
        feats, labels = model.net.feature_inputs, model.net.label_inputs
        if "x" in arrays and feats:
            named[feats[0]] = arrays["x"]
        if "y" in arrays and labels:
            named[labels[0]] = arrays["y"]
        return named or arrays
    raise DataError(f"{path}: input files must be .npy, .npz or .csv")


def _named(model, path, arrays: dict, labels: bool) -> dict:
    """An npz file's arrays under the network's input names. One unnamed array (np.savez's
    arr_0) is the one feature input when predicting; otherwise the names must match, and
    the error lists what the file holds and what the network reads."""
    from .batch import _expected, _show
    net = model.net
    wanted = list(net.feature_inputs) + (list(net.label_inputs) if labels else [])
    if all(name in arrays for name in wanted):
        return arrays
    if not labels and len(net.feature_inputs) == 1 and len(arrays) == 1:
        (only,) = arrays.values()
        return {net.feature_inputs[0]: only}
    held = ", ".join(f"'{k}' {_show(v)}" for k, v in arrays.items()) or "no arrays"
    reads = ", ".join(f"'{k}' {_expected(net.inputs[k])}" for k in wanted)
    example = ", ".join(f"{k}={'x' if k in net.feature_inputs else 'y'}" for k in wanted)
    raise DataError(f"{path} holds {held}; the network reads {reads}: save the arrays under "
                    f"those names, as np.savez('{os.path.basename(path)}', {example})")


def _with_classes(net, outputs: dict) -> dict:
    """The outputs, and for each output of class scores (N, K>1) its predicted class
    (NAME_class) and, where a softmax_cross_entropy loss reads it as logits, the class
    probabilities (NAME_prob); where a sigmoid_cross_entropy reads it, the sigmoid of the
    logits (NAME_prob) and, for one logit per sample, the class it gives (0 or 1)."""
    from .ops import REGISTRY
    out = {}
    for name, y in outputs.items():
        out[name] = y
        y = np.asarray(y)
        readers = [net.node(loss)["op"].name for loss in net.losses
                   if name in net.node(loss)["inputs"][:1]]
        if "sigmoid_cross_entropy" in readers:
            if y.ndim == 2 and y.shape[1] == 1:
                out[f"{name}_class"] = (y[:, 0] > 0).astype(np.int64)
            out[f"{name}_prob"] = REGISTRY["sigmoid"].forward(None, None,
                                                              [y.astype(np.float64)], {})
            continue
        if y.ndim != 2 or y.shape[1] < 2:
            continue
        out[f"{name}_class"] = y.argmax(axis=1)
        if "softmax_cross_entropy" in readers:
            out[f"{name}_prob"] = REGISTRY["softmax"].forward(None, None,
                                                              [y.astype(np.float64)], {})
    return out


def _write_outputs(path, outputs: dict) -> None:
    if path.endswith(".npz"):
        np.savez(path, **outputs)
    elif path.endswith(".csv"):
        cols, header = [], []
        for name, y in outputs.items():
            y = np.asarray(y).reshape(len(y), -1)
            cols.append(y)
            header += [name] if y.shape[1] == 1 else [f"{name}_{j}" for j in range(y.shape[1])]
        np.savetxt(path, np.concatenate(cols, axis=1), delimiter=",",
                   header=",".join(header), comments="", fmt="%.6g")
    else:
        raise DataError(f"{path}: predictions can be written to .npz or .csv")


def register(sub) -> None:
    s = sub.add_parser("train", help="train a spec; saves a model file",
                       description="Train SPEC with its train: section (epochs, optimizer, "
                       "data), showing a progress bar; the model is saved every 30 s, at the "
                       "end and on Ctrl-C. "
                       "Example: nngraph train specs/lenet5.yaml --epochs 2 --out lenet5.nnz")
    s.add_argument("spec", metavar="SPEC")
    s.add_argument("--epochs", type=_positive(int), help="total epochs (default: the spec's)")
    s.add_argument("--batch-size", type=_positive(int), help="default: the spec's")
    s.add_argument("--lr", type=_positive(float), help="override the optimizer's learning rate")
    s.add_argument("--backend", choices=BACKENDS, default="cpu")
    s.add_argument("--device", type=int, default=None, help="the GPU of --backend cuda "
                   "(default 0)")
    s.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    s.add_argument("--seed", type=int, default=None,
                   help="of the initial parameters and the batch order (default: the "
                   "spec's train.seed, else 0)")
    s.add_argument("--out", metavar="MODEL.nnz", help="default: NAME.nnz")
    s.add_argument("--weights", metavar="FILE", help="start from the parameters of this .nnz "
                   "or .onnx model, by layer name (default: the spec's train.init_from)")
    s.add_argument("--resume", metavar="MODEL.nnz", help="continue training a saved model "
                   "up to the total number of epochs")
    s.add_argument("--samples", metavar="DIR", help="after each epoch, write a grid of 64 "
                   "generated samples of the first output to DIR/epoch_NNN.png (networks "
                   "with sampled inputs, such as a GAN's noise)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="evaluate a saved model (losses and metrics)",
                       description="Evaluate MODEL on a data file or on a split of its "
                       "spec's data (default: the validation split).")
    s.add_argument("model", metavar="MODEL.nnz")
    s.add_argument("--data", metavar="FILE", help=".npz (arrays named like the inputs) or .csv")
    s.add_argument("--split", choices=["validation", "train", "all"], default="validation")
    s.add_argument("--backend", choices=BACKENDS, default=None)
    s.add_argument("--device", type=int, default=None, help="the GPU of --backend cuda "
                   "(default 0)")
    s.add_argument("--confusion", action="store_true",
                   help="print the confusion matrix of each loss that compares classes")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("predict", help="run a saved model on inputs",
                       description="Print or write MODEL's outputs for --input (.npy, .npz or "
                       ".csv); without --input, for the validation split of its spec's data.")
    s.add_argument("model", metavar="MODEL.nnz")
    s.add_argument("--input", metavar="FILE")
    s.add_argument("-o", "--output", metavar="OUT", help="write all predictions (.npz, .csv)")
    s.add_argument("--limit", type=int, default=10, help="rows to print (default 10)")
    s.add_argument("--backend", choices=BACKENDS, default=None)
    s.add_argument("--device", type=int, default=None, help="the GPU of --backend cuda "
                   "(default 0)")
    s.set_defaults(func=cmd_predict)
