"""Running a search with Optuna: the study, one trial, and trials in parallel processes.

Optuna owns the sampling (TPE, random, grid), the pruning and the storage (in memory, SQLite
or another database through its RDB storage, or a journal file); nngraph supplies the
objective: build the trial's spec, compile it, fit it, and report the metric after every
epoch so that a pruner can stop a trial that is doing worse than the others did at the same
epoch. A trial scores its best epoch (as Keras Tuner does), not its last.

A trial whose spec is invalid (a combination of values no layer accepts), whose data cannot
be read or whose loss becomes NaN is a failed trial, with the reason kept in its user
attributes ('error'): the search goes on. Kernels compiled for one trial serve every later
trial of the same shapes (a change of learning rate or batch size compiles nothing).
"""
from __future__ import annotations

import math
import os
import time
import warnings

from ..data import load_training_data
from ..errors import NNGraphError, SearchError, TrainingWarning
from ..model import compile_network
from ..spec import load_dict
from .space import Space, trial_spec


def optuna():
    """Optuna, or one line saying how to install it."""
    try:
        import optuna as o
    except ImportError:
        raise SearchError("nngraph search needs Optuna, which is not installed: "
                          "pip install nngraph[search]") from None
    o.logging.set_verbosity(o.logging.WARNING)
    warnings.filterwarnings("ignore", category=o.exceptions.ExperimentalWarning)
    return o


def storage_of(url: str | None):
    """An Optuna storage for a URL: sqlite:///x.db (or any database URL SQLAlchemy knows),
    journal:PATH (a journal file several processes can share), or None (in memory)."""
    o = optuna()
    if url is None:
        return None
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend
            return o.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
        return o.storages.RDBStorage(url, heartbeat_interval=60, grace_period=120)
    except Exception as e:        # SQLAlchemy's and the drivers' errors have no common base
        raise SearchError(f"cannot open the study storage {url!r}: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''} (sqlite:///FILE.db, "
                          "a database URL, or journal:FILE)") from None


def sampler_of(space: Space, worker: int = 0, resumed: int = 0):
    """The sampler, seeded from the spec; parallel workers, and a run that resumes a study
    of `resumed` trials, must not draw the values that were drawn before."""
    o = optuna()
    seed = space.seed + 1000 * worker + resumed
    if space.sampler == "grid":
        return o.samplers.GridSampler(space.grid(), seed=seed)
    if space.sampler == "random":
        return o.samplers.RandomSampler(seed=seed)
    return o.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, (space.trials or 20) // 4)))


def pruner_of(space: Space):
    """The median rule judges a trial only after a third of its epochs: the first epochs'
    validation figures are too noisy to tell a slow start from a bad setting."""
    o = optuna()
    if space.pruner == "median":
        return o.pruners.MedianPruner(n_startup_trials=3,
                                      n_warmup_steps=max(1, space.epochs // 3))
    return o.pruners.NopPruner()


def open_study(space: Space, name: str, storage, worker: int = 0):
    """The study `name` in `storage`, created on first use; one found there must optimise
    in the same direction."""
    study = optuna().create_study(study_name=name, storage=storage, load_if_exists=True,
                                  direction=space.direction, sampler=sampler_of(space, worker),
                                  pruner=pruner_of(space))
    if study.trials:
        study.sampler = sampler_of(space, worker, resumed=len(study.trials))
    if study.direction.name.lower() != space.direction:
        raise SearchError(f"the study '{name}' in the storage was made to "
                          f"{study.direction.name.lower()} its metric, and this search "
                          f"{space.direction}s {space.metric}: name another study (--study)")
    return study


class Objective:
    """One trial: the spec with the trial's values, compiled and trained."""

    def __init__(self, net, space: Space, backend: str, data_cache: dict):
        self.net, self.space, self.backend = net, space, backend
        self.data = data_cache

    def __call__(self, trial):
        values = {e.key: e.value(e.suggest(trial)) for e in self.space.entries}
        try:
            net = load_dict(trial_spec(self.net, values), self.net.file)
            model = compile_network(net, backend=self.backend)
            data, validation = self._data(net)
            score = _Score(trial, self.space)
            with warnings.catch_warnings():        # a trial's line says how it went
                warnings.simplefilter("ignore", TrainingWarning)
                model.fit(data, validation=validation, verbose=0, callback=score)
        except NNGraphError as e:
            trial.set_user_attr("error", _first_line(e))
            raise
        if score.best is None:
            raise SearchError(f"training reported no '{self.space.metric}'")
        return score.best

    def _data(self, net):
        """The training data, read once for every trial that reads it the same way."""
        key = repr(net.train.get("data"))
        if key not in self.data:
            self.data.clear()
            self.data[key] = load_training_data(net)
        return self.data[key]


class _Score:
    """fit's per-epoch callback: reports the metric to Optuna and asks its pruner."""

    def __init__(self, trial, space: Space):
        self.trial, self.metric = trial, space.metric
        self.sign = -1 if space.direction == "maximize" else 1
        self.best = None

    def __call__(self, epoch, logs):
        if self.metric not in logs:
            raise SearchError(f"training reports {', '.join(logs)}, not the search's metric "
                              f"'{self.metric}' (is there validation data?)")
        v = float(logs[self.metric])
        if math.isfinite(v) and (self.best is None or self.sign * v < self.sign * self.best):
            self.best = v
        self.trial.report(v, epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_at", epoch)
            raise optuna().TrialPruned(f"pruned after epoch {epoch}")


def _first_line(e) -> str:
    diags = getattr(e, "diagnostics", None)
    if diags:
        return "; ".join(d.message for d in diags if d.severity == "error")[:500]
    return str(e).splitlines()[0][:500] if str(e) else type(e).__name__


def run_trials(net, space: Space, name: str, storage_url, trials: int, backend: str,
               worker: int = 0, progress=None):
    """Add `trials` trials to the study (in this process)."""
    o = optuna()
    study = open_study(space, name, storage_of(storage_url) if isinstance(storage_url, str)
                       else storage_url, worker)
    callbacks = [progress] if progress else []
    study.optimize(Objective(net, space, backend, {}), n_trials=trials,
                   catch=(NNGraphError,), callbacks=callbacks, gc_after_trial=False)
    return study


def _worker(spec_file, spec, space, name, storage_url, trials, backend, worker, total,
            verbose):
    """A process of `--jobs J`: one thread of kernels each, the study shared through storage."""
    os.environ["NNGRAPH_THREADS"] = "1"
    from .report import Progress
    net = load_dict(spec, spec_file)
    progress = Progress(space, total, time.monotonic(), prefix=f"[job {worker + 1}] ") \
        if verbose else None
    run_trials(net, space, name, storage_url, trials, backend, worker, progress)
