"""What a search shows and leaves behind: a line per trial as it ends, the table of trials,
and in the output folder best.yaml, trials.csv and Optuna's plots as PNG files."""
from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings

import yaml

from .space import Space, trial_spec


def atomic_write(path: str, fill, text: bool = True) -> None:
    """Write through a temporary file in the same folder, then rename: a failed write
    leaves any earlier file as it was."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w" if text else "wb", newline="" if text else None) as f:
            fill(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _params(params: dict) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in params.items())


def describe(t) -> str:
    """A finished trial in a few words: its value, or why it has none."""
    state = t.state.name
    if state == "COMPLETE":
        return _value(t.value)
    if state == "PRUNED":
        return f"pruned after epoch {t.user_attrs.get('pruned_at', '?')}"
    if state == "FAIL":
        return f"failed: {t.user_attrs.get('error', 'see the log')}"
    return state.lower()


class Progress:
    """Optuna's after-trial callback: one line per trial, with the best so far."""

    def __init__(self, space: Space, total: int, started: float, prefix: str = "",
                 out=None):
        self.space, self.total, self.started, self.prefix = space, total, started, prefix
        self.out = out or sys.stdout

    def __call__(self, study, t):
        seconds = (t.duration.total_seconds() if t.duration else 0.0)
        try:
            best = f"best {_value(study.best_value)} (trial {study.best_trial.number})"
        except ValueError:                    # no trial has completed yet
            best = "no trial completed yet"
        print(f"{self.prefix}trial {t.number} ({len(study.trials)}/{self.total} in the "
              f"study): {self.space.metric} {describe(t)} [{_params(t.params)}] "
              f"{seconds:.1f} s; {best}", file=self.out, flush=True)


def table(study, space: Space) -> str:
    """The trials as an aligned text table, best first."""
    keys = [e.key for e in space.entries]
    rows = [["trial", space.metric, *keys, "seconds"]]
    sign = -1 if space.direction == "maximize" else 1
    def order(t):
        done = t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)
        return (0 if done else 1, sign * t.value if done else 0, t.number)
    for t in sorted(study.trials, key=order):
        seconds = t.duration.total_seconds() if t.duration else float("nan")
        rows.append([str(t.number), describe(t)[:48],
                     *[_value(t.params.get(k, "")) for k in keys], f"{seconds:.1f}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def write_csv(study, space: Space, path: str) -> None:
    keys = [e.key for e in space.entries]
    def fill(f):
        w = csv.writer(f)
        w.writerow(["trial", "state", space.metric, *keys, "seconds", "note"])
        for t in study.trials:
            seconds = t.duration.total_seconds() if t.duration else ""
            note = "" if t.state.name == "COMPLETE" else describe(t)
            w.writerow([t.number, t.state.name.lower(), "" if t.value is None else t.value,
                        *[t.params.get(k, "") for k in keys], seconds, note])
    atomic_write(path, fill, text=True)


def write_best(net, study, space: Space, path: str) -> dict:
    """best.yaml: the spec with the best trial's values, which `nngraph train` runs as is."""
    best = study.best_trial
    spec = trial_spec(net, space.values(best.params))
    header = (f"# {net.name}: the best of {len(study.trials)} trials of the search "
              f"'{study.study_name}' ({space.metric} {_value(best.value)}, trial "
              f"{best.number})\n# chosen: {_params(best.params)}\n")
    text = header + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=96)
    atomic_write(path, lambda f: f.write(text), text=True)
    return spec


def write_plots(study, out: str) -> list:
    """Optuna's optimisation history and parameter importances as PNG files; the names
    written (importances need two completed trials and a parameter that varied)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as views
    written = []
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    plots = [("history.png", views.plot_optimization_history)]
    if len(done) >= 2 and len({repr(t.params) for t in done}) >= 2:
        plots.append(("importances.png", views.plot_param_importances))
    for name, plot in plots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = plot(study)
            except (ValueError, RuntimeError) as e:     # Optuna refuses too few trials
                print(f"note: no {name}: {e}", file=sys.stderr)
                continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=100)
        plt.close(fig)
        written.append(name)
    return written


def elapsed(started: float) -> str:
    s = time.monotonic() - started
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
