"""`nngraph search`: hyperparameter search over a spec's `search:` section (nngraph/hpsearch/)."""
from __future__ import annotations


def cmd_search(args) -> int:
    from .hpsearch import search
    search(args.spec, trials=args.trials, jobs=args.jobs, storage=args.storage,
           study=args.study, out=args.out, backend=args.backend, verbose=not args.quiet)
    return 0


def _positive(text: str) -> int:
    import argparse
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def register(sub) -> None:
    s = sub.add_parser("search", help="search hyperparameters (Optuna): the spec's search: "
                       "section", description="Run trials of SPEC's search: space with Optuna "
                       "(TPE, random or grid sampler; median pruning), a line per trial, then "
                       "the table of trials; with --out, DIR/best.yaml (a spec nngraph train "
                       "runs as is), DIR/trials.csv and PNG plots of the optimisation history "
                       "and the parameter importances. Needs pip install nngraph[search]. "
                       "Example: nngraph search specs/search/iris.yaml --trials 20 "
                       "--storage sqlite:///iris.db --out iris_search")
    s.add_argument("spec", metavar="SPEC")
    s.add_argument("--trials", type=_positive, default=None,
                   help="trials this run adds (default: search.trials, else the grid's size "
                        "or 20)")
    s.add_argument("--jobs", type=_positive, default=1,
                   help="parallel processes on this machine (default 1)")
    s.add_argument("--storage", metavar="URL", default=None,
                   help="keep the study there, to resume it or share it between machines: "
                        "sqlite:///study.db, postgresql://..., mysql://..., or journal:FILE "
                        "(default: in memory)")
    s.add_argument("--study", metavar="NAME", default=None,
                   help="the study's name in the storage (default: the spec's name)")
    s.add_argument("--out", metavar="DIR", default=None,
                   help="write best.yaml, trials.csv, history.png and importances.png here")
    s.add_argument("--backend", choices=["cpu", "reference"], default="cpu")
    s.add_argument("-q", "--quiet", action="store_true", help="no line per trial")
    s.set_defaults(func=cmd_search)
