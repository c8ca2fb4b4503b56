"""Hyperparameter search over a spec's `search:` section, with Optuna.

    result = nngraph.search("specs/search/iris.yaml", trials=20, storage="sqlite:///s.db")
    result.best_value, result.best_params, result.best_spec

Optuna is an optional extra (`pip install nngraph[search]`), imported only here. The spec's
section is checked by nngraph.load (spec/search_schema.py); before the first trial every
choice and both ends of every range are tried in the spec, so that a value no layer accepts
is reported where the search space says it, not as a failed trial later.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import Diagnostic, SearchError, SpecError
from ..spec import load_any
from . import report
from .space import Space, space_of, trial_spec
from .study import _worker, open_study, optuna, run_trials, storage_of

__all__ = ["search", "SearchResult"]

DEFAULT_TRIALS = 20


@dataclass
class SearchResult:
    best_value: float
    best_params: dict
    best_spec: dict               # the spec with the best values: what best.yaml holds
    metric: str
    direction: str
    study: Any                    # the optuna.Study, with every trial of this and earlier runs
    files: list = field(default_factory=list)   # what was written in `out`

    def __repr__(self):
        return (f"SearchResult({self.metric} {self.best_value:.4g} with {self.best_params}, "
                f"{len(self.study.trials)} trials)")


def search(spec, trials: int | None = None, jobs: int = 1, storage: str | None = None,
           study: str | None = None, out: str | None = None, backend: str = "cpu",
           verbose: bool = True) -> SearchResult:
    """Run trials of the spec's search space and return the best. `trials`: how many this
    call adds (default search.trials, else the grid's size or 20); `storage`: an Optuna
    storage URL (sqlite:///study.db, postgresql://..., or journal:FILE) that keeps the study
    across runs and machines; `study`: its name (default the spec's name); `jobs`: parallel
    processes on this machine; `out`: a folder for best.yaml, trials.csv and the plots."""
    net = load_any(spec)
    space = space_of(net)
    optuna()
    check_values(net, space)
    n = trials or space.trials or (math.prod(len(v) for v in space.grid().values())
                                   if space.sampler == "grid" else DEFAULT_TRIALS)
    if n < 1 or jobs < 1:
        raise SearchError(f"trials and jobs must be at least 1, got {n} and {jobs}")
    name = study or net.name
    started = time.monotonic()
    if verbose:
        where = f" in {storage}" if storage else ""
        print(f"searching {net.name}: {n} trials of {len(space.entries)} parameters, "
              f"{space.sampler} sampler, {space.direction} {space.metric}, study "
              f"'{name}'{where}" + (f", {jobs} processes" if jobs > 1 else ""), flush=True)
    if jobs > 1:
        result_study = _parallel(net, space, name, storage, n, jobs, backend, out, verbose)
    else:
        progress = report.Progress(space, n, started) if verbose else None
        result_study = run_trials(net, space, name, storage_of(storage), n, backend,
                                  progress=progress)
    return _finish(net, space, result_study, out, verbose, started)


def _parallel(net, space, name, storage, n, jobs, backend, out, verbose):
    """`jobs` processes share the study through the storage: a journal file when none is
    given (the folder `out`, else a temporary one)."""
    folder = out or tempfile.mkdtemp(prefix="nngraph-search-")
    os.makedirs(folder, exist_ok=True)
    url = storage or f"journal:{os.path.join(folder, 'study.journal')}"
    open_study(space, name, storage_of(url))       # create it once, before the workers
    ctx = multiprocessing.get_context("spawn")
    shares = [n // jobs + (1 if i < n % jobs else 0) for i in range(jobs)]
    procs = [ctx.Process(target=_worker, args=(net.file, net.spec, space, name, url, k,
                                               backend, i, n, verbose))
             for i, k in enumerate(shares) if k]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise SearchError(f"{len(failed)} of {len(procs)} search processes ended with an "
                          f"error (exit codes {failed}); the study in {url} keeps their trials")
    return open_study(space, name, storage_of(url))


def _finish(net, space: Space, study, out, verbose, started) -> SearchResult:
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if verbose:
        print(report.table(study, space), flush=True)
    if not done:
        raise SearchError(f"no trial of the study '{study.study_name}' completed: "
                          + "; ".join(sorted({report.describe(t) for t in study.trials}))[:600])
    best = study.best_trial
    files = []
    best_spec = trial_spec(net, space.values(best.params))
    if out:
        os.makedirs(out, exist_ok=True)
        report.write_best(net, study, space, os.path.join(out, "best.yaml"))
        report.write_csv(study, space, os.path.join(out, "trials.csv"))
        files = ["best.yaml", "trials.csv"] + report.write_plots(study, out)
    if verbose:
        print(f"best: trial {best.number}, {space.metric} {best.value:.4g} with "
              f"{', '.join(f'{k}={v}' for k, v in best.params.items())} "
              f"({len(study.trials)} trials in the study, {report.elapsed(started)})")
        if out:
            print(f"wrote {', '.join(os.path.join(out, f) for f in files)}")
    return SearchResult(best.value, space.values(best.params), best_spec, space.metric,
                        space.direction, study, files)


def check_values(net, space: Space) -> None:
    """Every choice and both ends of every range, each alone in the spec: a value the key
    does not accept is an error located at the search space entry."""
    from ..spec import load_dict
    problems = []
    for e in space.entries:
        for v in e.ends():
            try:
                load_dict(trial_spec(net, {e.key: v}), net.file)
            except SpecError as err:
                why = "; ".join(d.message for d in err.errors)
                problems.append((e.key, f"search.space '{e.key}': the value {v!r} does not "
                                        f"make a valid spec: {why}"))
                break
    if problems:
        at = _positions(net)
        raise SpecError([Diagnostic(net.file, *at(("search", "space", key)), "E013", message)
                         for key, message in problems])


def _positions(net):
    """(line, col) of a path in the spec's file, or (1, 1) for a spec given as data."""
    from ..errors import Reporter
    from ..spec.source import read_text
    try:
        with open(net.file, encoding="utf-8") as f:
            src = read_text(net.file, f.read(), Reporter(net.file))
    except (OSError, ValueError):
        src = None
    return (lambda path: src.at(path)) if src is not None else (lambda path: (1, 1))
