"""The `nngraph` command line.

    nngraph check specs/*.yaml            exit 0 when every spec is valid, 1 otherwise
    nngraph summary specs/lenet5.yaml
    nngraph viz specs/lenet5.yaml -o lenet5.svg
    nngraph schema > nngraph.schema.json
    nngraph export lenet5.nnz -o lenet5.onnx      (or a SPEC, with fresh weights)
    nngraph import lenet5.onnx -o lenet5.nnz --spec lenet5.yaml
    nngraph search specs/search/iris.yaml --trials 20 --out iris_search

No Python traceback reaches a user for a bad spec, bad data or a bad model file: those print
`FILE:LINE:COL: error[CODE]: message` lines and exit 1. Set NNGRAPH_DEBUG=1 to see tracebacks.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from . import cli_run, cli_sample, cli_search, cli_tools
from .errors import NNGraphError, SpecError, TrainingWarning

EPILOG = "Run 'nngraph COMMAND --help' for a command's options."
BUG = "This is a bug in nngraph; rerun with NNGRAPH_DEBUG=1 for the traceback."


def _load(path):
    from . import load
    return load(path)


def cmd_check(args) -> int:
    """Every file is checked, whatever happened to the ones before it; exit 2 if nngraph
    itself failed on one (a bug), else 1 if any spec is invalid."""
    failed = internal = False
    for path in args.specs:
        try:
            net = _load(path)
            layers = len(net.layers())
            ok = f"{path}: ok ({net.name}: {layers} layer{'s' if layers != 1 else ''}, " \
                 f"{net.num_params:,} parameters)"
        except SpecError as e:
            failed = True
            for d in e.diagnostics:
                print(d, file=sys.stderr)
            n = len(e.errors)
            print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
            continue
        except NNGraphError as e:
            failed = True
            print(f"{path}: error: {e}", file=sys.stderr)
            continue
        except Exception as e:      # a bug in nngraph: say so, and go on with the next file
            if os.environ.get("NNGRAPH_DEBUG"):
                raise
            internal = True
            print(f"{path}: internal error: {type(e).__name__}: {e}\n{BUG}", file=sys.stderr)
            continue
        for w in net.warnings:
            print(w, file=sys.stderr)
        if not args.quiet:
            print(ok)
    return 2 if internal else 1 if failed else 0


def cmd_summary(args) -> int:
    net = _load(args.spec)
    for w in net.warnings:
        print(w, file=sys.stderr)
    from . import weights
    start = weights.source(net, args.weights)
    # which layers start from that file (nothing compiled)
    print(net.summary(weights.preview(net, *start) if start is not None else None))
    return 0


def cmd_viz(args) -> int:
    from . import viz
    net = _load(args.spec)
    out = args.output or os.path.splitext(os.path.basename(args.spec))[0] + ".svg"
    written = net.render(out, rankdir=args.rankdir, fused=args.fused, backward=args.backward,
                         backend=args.backend)
    if os.path.abspath(written) != os.path.abspath(out):
        print(viz.DOT_MISSING.format(dot=written, wanted=out), file=sys.stderr)
    else:
        print(f"wrote {written}")
    return 0


def cmd_schema(args) -> int:
    from .schema import json_schema
    text = json.dumps(json_schema(), indent=2)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_docs(args) -> int:
    from .specdoc import spec_reference
    text = spec_reference()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args) -> int:
    """A model file's trained weights, or a spec's freshly initialised ones, as ONNX."""
    import zipfile
    from . import compile, load, load_model
    from .onnx import to_onnx
    source = args.model
    is_model = source.endswith(".nnz") or zipfile.is_zipfile(source)
    if is_model:
        if args.seed is not None:
            raise NNGraphError("--seed initialises a SPEC's weights; a model file has its own")
        model = load_model(source, backend="reference")   # weights only: nothing to compile
        what = f"weights of {source}, step {model.step}"
    else:
        net = _load(source)
        for w in net.warnings:
            print(w, file=sys.stderr)
        # the reference backend: export needs the weights, no compiled kernels
        model = compile(net, backend="reference", seed=args.seed,
                        dtype=args.dtype or "float32")
        what = f"freshly initialised weights, seed {model.seed}"
    proto = to_onnx(model, opset=args.opset, dtype=args.dtype)
    out = args.output or os.path.splitext(os.path.basename(source))[0] + ".onnx"
    from .onnx.export import write         # imports onnx: only once to_onnx found it
    write(proto, out)
    print(f"wrote {out}: {model.net.name} ({what}), ONNX opset "
          f"{proto.opset_import[0].version}, {len(proto.graph.node)} nodes")
    for kind, values in (("input", proto.graph.input), ("output", proto.graph.output)):
        for v in values:
            print(f"  {kind:<7}{v.name} {_onnx_type(v)}")
    return 0


def cmd_import(args) -> int:
    """An ONNX file as an nngraph model file (and, with --spec, its readable spec)."""
    from . import compile
    from .onnx import onnx_to_spec
    from .onnx.import_graph import set_weights
    spec, params, state = onnx_to_spec(args.model)
    # the reference backend: saving needs the weights, no compiled kernels
    model = compile(spec, backend="reference", seed=0, dtype=args.dtype)
    set_weights(model, params, state)
    out = args.output or os.path.splitext(os.path.basename(args.model))[0] + ".nnz"
    model.save(out)
    layers = len(model.net.layers())
    print(f"wrote {out}: {model.net.name} ({layers} layer{'s' if layers != 1 else ''}, "
          f"{model.net.num_params:,} parameters) from {args.model}")
    if args.spec:
        import yaml
        with open(args.spec, "w", encoding="utf-8") as f:
            f.write(f"# imported from {os.path.basename(args.model)} by nngraph import\n")
            yaml.safe_dump(spec, f, sort_keys=False, default_flow_style=None, width=96)
        print(f"wrote {args.spec}")
    return 0


def _onnx_type(value) -> str:
    """'batch x 1 x 28 x 28 float32' of an ONNX graph input or output."""
    from onnx import helper
    t = value.type.tensor_type
    dims = [d.dim_param or str(d.dim_value) for d in t.shape.dim]
    return f"{' x '.join(dims)} {helper.tensor_dtype_to_np_dtype(t.elem_type).name}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nngraph", epilog=EPILOG,
        description="A declarative neural-network compiler: check, draw, compile and train "
                    "networks written as YAML or JSON specs.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("check", help="validate specs; exit 1 with every error printed",
                       description="Validate one or more specs. Prints every problem as "
                       "FILE:LINE:COL: error[CODE]: message; exits 1 if any spec is invalid.")
    s.add_argument("specs", nargs="+", metavar="SPEC")
    s.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("summary", help="print the layer table: shapes, parameters, FLOPs",
                       description="Print one row per layer (output shape, parameters, "
                       "FLOPs and activation bytes per sample) and the totals; with "
                       "train.init_from or --weights, which layers start from that file.")
    s.add_argument("spec", metavar="SPEC")
    s.add_argument("--weights", metavar="FILE", help="a .nnz or .onnx file the network "
                   "starts from (default: the spec's train.init_from)")
    s.set_defaults(func=cmd_summary)

    s = sub.add_parser("viz", help="draw the network with graphviz (.svg, .png, .dot)",
                       description="Draw the network. Example: nngraph viz "
                       "specs/lenet5.yaml -o lenet5.png")
    s.add_argument("spec", metavar="SPEC")
    s.add_argument("-o", "--output", metavar="OUT", help="OUT.svg, OUT.png or OUT.dot "
                   "(default: SPEC's name with .svg)")
    s.add_argument("--rankdir", choices=["TB", "LR", "BT", "RL"], default="TB",
                   help="layout direction (default TB: top to bottom)")
    s.add_argument("--fused", action="store_true", help="draw each fused kernel as a cluster")
    s.add_argument("--backend", choices=["cpu", "cuda"], default="cpu",
                   help="whose fused kernels --fused draws (cuda needs no GPU)")
    s.add_argument("--backward", action="store_true", help="draw the backward graph too")
    s.set_defaults(func=cmd_viz)

    s = sub.add_parser("schema", help="print the spec format as JSON Schema",
                       description="Print the JSON Schema of spec format v1, for editors.")
    s.add_argument("-o", "--output", metavar="FILE")
    s.set_defaults(func=cmd_schema)

    s = sub.add_parser("docs", help="print the spec language reference (Markdown)",
                       description="Print the reference of the spec language, generated "
                       "from the op registry: every key, op, attribute, default, "
                       "initializer and loss. Example: nngraph docs -o docs/spec.md")
    s.add_argument("-o", "--output", metavar="FILE")
    s.set_defaults(func=cmd_docs)

    _register_export(sub)
    _register_import(sub)
    cli_run.register(sub)
    cli_search.register(sub)
    cli_sample.register(sub)
    cli_tools.register(sub)
    return p


def _register_export(sub) -> None:
    s = sub.add_parser("export", help="write a model or a spec as an ONNX file",
                       description="Write the inference graph of MODEL.nnz (its trained "
                       "weights) or of SPEC (freshly initialised weights) as ONNX: the "
                       "feature inputs, a dynamic batch dimension and the outputs, with the "
                       "layers' names. Needs the onnx package (pip install nngraph[onnx]). "
                       "Example: nngraph export lenet5.nnz -o lenet5.onnx")
    s.add_argument("model", metavar="MODEL.nnz|SPEC")
    s.add_argument("-o", "--output", metavar="NAME.onnx",
                   help="default: MODEL's or SPEC's name with .onnx")
    s.add_argument("--opset", type=int, default=None,
                   help="ONNX opset to write (default 18; 13 or newer)")
    s.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="of the exported weights and float inputs (default: the model's; "
                        "float32 for a SPEC); float64 only for networks that ONNX Runtime "
                        "runs in float64: no convolution, average pooling, upsampling or "
                        "recurrent layer")
    s.add_argument("--seed", type=int, default=None,
                   help="of a SPEC's initial weights (default: the spec's train.seed, else 0)")
    s.set_defaults(func=cmd_export)


def _register_import(sub) -> None:
    s = sub.add_parser("import", help="read an ONNX file as an nngraph model",
                       description="Read an ONNX model as an nngraph network: a spec made "
                       "from its graph, with its weights. Writes the model file and, with "
                       "--spec, the spec as YAML. Needs the onnx package. Example: nngraph "
                       "import lenet5.onnx -o lenet5.nnz --spec lenet5.yaml")
    s.add_argument("model", metavar="MODEL.onnx")
    s.add_argument("-o", "--output", metavar="NAME.nnz",
                   help="default: MODEL's name with .nnz")
    s.add_argument("--spec", metavar="NAME.yaml", help="also write the spec as YAML")
    s.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="of the model's parameters (default float32)")
    s.set_defaults(func=cmd_import)


def _version() -> str:
    from . import __version__
    return f"nngraph {__version__}"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except SpecError as e:
        for d in e.diagnostics:
            print(d, file=sys.stderr)
        return 1
    except NNGraphError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:          # a bug in nngraph, not in the user's input
        if os.environ.get("NNGRAPH_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {e}\n{BUG}", file=sys.stderr)
        return 2


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """nngraph's own warnings as the CLI's other messages look, without a source line."""
    if issubclass(category, TrainingWarning):
        print(f"warning: {message}", file=sys.stderr, flush=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


if __name__ == "__main__":
    sys.exit(main())
