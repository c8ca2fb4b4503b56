"""Metrics: what training, `Model.evaluate` and `nngraph eval` report beside the loss.

Every metric belongs to a loss and reads that loss's two inputs, a prediction and a target.
What they hold is the loss op's `task`:

    classes  class scores (N, K) against class indices (N,) or one-hot rows (N, K)
             (softmax_cross_entropy, max_margin)
    logits   logits against 0/1 targets of their shape (sigmoid_cross_entropy); mae, mse
             and rmse compare sigmoid(logits) with the targets
    signs    scores against ±1 labels (hinge, logistic, exponential)
    values   predictions against targets of their shape (squared_error, mse, mae); the
             classification metrics need 0/1 targets (thresholded at 0.5) or one-hot rows

The metrics are those of the whole data an epoch or an evaluation went through, not a mean
of per-batch figures: counts and sums are gathered batch by batch and divided once, so that
precision and recall come from one confusion matrix and auc ranks every score.

    Names     What                                            Classes (K > 2)
    accuracy  fraction of samples (elements) predicted right
    top_k_accuracy  the label among the k best scores (k = 5)  reported as top_5_accuracy
    precision, recall, f1   of the positive class (1)          macro average over classes
    auc       area under the ROC curve                         macro one-vs-rest
    mae, mse, rmse          over every element

Which keys a network reports (`report_keys`): with one loss `loss` and the metrics by their
names (`accuracy`); with several, `loss` is the weighted total, every loss is reported by its
own name (unweighted), and its metrics as STEM_metric, STEM being its name without a
trailing `_loss` (`class_loss` reports `class_accuracy`). Held-out values add `val_`.

A loss op may also measure something of its own (OpDef.measures: per-sample values from its
inputs and parameters), reported under the same prefix, always: an RBM's contrastive
divergence reports `reconstruction_error` and `pseudo_log_likelihood`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .errors import DataError, did_you_mean
from .ir import Node
from .metric_formulas import auc, precision_recall_f1
from .ops.base import AttrError, RunContext

CLASSIFICATION = ("accuracy", "top_k_accuracy", "precision", "recall", "f1", "auc")
REGRESSION = ("mae", "mse", "rmse")
NAMES = CLASSIFICATION + REGRESSION
BINARY = ("accuracy", "precision", "recall", "f1", "auc")
APPLIES = {"classes": CLASSIFICATION, "logits": BINARY + REGRESSION, "signs": BINARY,
           "values": BINARY + REGRESSION}
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "auc", "pseudo_log_likelihood")
_TOP_K = re.compile(r"top_(\d+)_accuracy$")
SCHEMA = {"type": "array", "items": {"oneOf": [
    {"enum": list(NAMES)}, {"type": "string", "pattern": "^top_[0-9]+_accuracy$"},
    {"type": "object", "properties": {"name": {"const": "top_k_accuracy"},
                                      "k": {"type": "integer", "minimum": 1}},
     "required": ["name"], "additionalProperties": False}]}}


@dataclass(frozen=True)
class Metric:
    name: str           # one of NAMES
    k: int = 5          # top_k_accuracy only

    @property
    def key(self) -> str:
        return f"top_{self.k}_accuracy" if self.name == "top_k_accuracy" else self.name


def parse(value, allow_loss: bool = False) -> tuple:
    """`metrics:` as written, checked: a list of names (`top_3_accuracy` names its k) or
    mappings {name: top_k_accuracy, k: 3}. `loss` is accepted (and dropped) where
    `allow_loss`: train.metrics once listed it, and the loss is always reported."""
    if not isinstance(value, list):
        raise AttrError(f"metrics is a list such as [accuracy, f1]; got {_show(value)}")
    out, unknown = [], []
    for entry in value:
        if isinstance(entry, dict):
            name, k = entry.get("name"), entry.get("k", 5)
            extra = set(entry) - {"name", "k"}
            if extra or name != "top_k_accuracy":
                raise AttrError("a metric is a name, or {name: top_k_accuracy, k: 3}; got "
                                f"{_show(entry)}")
        elif isinstance(entry, str):
            name, k = entry, 5
            top = _TOP_K.match(entry)
            if top:
                name, k = "top_k_accuracy", int(top.group(1))
            if allow_loss and entry == "loss":
                continue
        else:
            raise AttrError(f"a metric is a name such as accuracy; got {_show(entry)}")
        if name not in NAMES:
            unknown.append(f"'{name}'{did_you_mean(name, NAMES)}")
            continue
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise AttrError(f"top_k_accuracy's k is a whole number of at least 1; got {k!r}")
        metric = Metric(name, k)
        if metric in out:
            raise AttrError(f"metric '{metric.key}' is listed twice")
        out.append(metric)
    if unknown:
        raise AttrError(f"unknown metric{'s' if len(unknown) > 1 else ''} {', '.join(unknown)};"
                        f" metrics are {', '.join(NAMES)}", "E013")
    return tuple(out)


def _show(v) -> str:
    return f"'{v}'" if isinstance(v, str) else f"{v!r:.60}"


def stem(loss: str) -> str:
    """'class' for a loss named 'class_loss' or 'class': what its metrics' keys start with."""
    return loss[:-5] if loss.endswith("_loss") and len(loss) > 5 else loss


def higher_is_better(key: str) -> bool:
    """Does a larger value of reported `key` (`val_class_f1`) mean better?"""
    return key.endswith(HIGHER_IS_BETTER) or bool(re.search(r"top_\d+_accuracy$", key))


# ------------------------------------------------------------------------------ the plan

@dataclass(frozen=True)
class Report:
    """What one loss reports: its own value under `key` (None: the total stands for it)
    and its metrics under prefix + metric.key. `asked`: the spec asked for the metrics, so
    one that cannot be computed on the data is an error, not left out."""
    loss: str
    key: str | None
    prefix: str
    task: str | None
    metrics: tuple
    asked: bool
    measures: tuple = ()    # names of the loss op's own measures (OpDef.measures)


def plan(graph, losses, train: dict, label_inputs) -> tuple[list, list]:
    """(reports, problems) for a network's losses: a Report per loss, and (path, message)
    for every metric the spec asks of a loss it cannot apply to (the spec loader reports
    them where they are written)."""
    several = len(losses) > 1
    general = train.get("metrics") if isinstance(train, dict) else None
    try:
        general = parse(general, allow_loss=True) if general is not None else ()
    except AttrError:
        general = ()                    # train_schema has said so
    reports, problems, taken = [], [], set()
    for loss in losses:
        d = graph.nodes[loss]
        ins, op = d["inputs"], d["op"]
        task = op.task if len(ins) == 2 else None
        own = d["attrs"].get("metrics")
        if own is not None:
            chosen, asked = own, True
            for m in own:
                if task is None or m.name not in APPLIES[task]:
                    problems.append((d.get("path", ()) + ("metrics",),
                                     _misfit(loss, op.name, task, m)))
            chosen = tuple(m for m in own if task and m.name in APPLIES[task])
        elif general:
            chosen, asked = tuple(m for m in general if task and m.name in APPLIES[task]), True
            taken.update(chosen)
        elif task and ins[1] in label_inputs:
            chosen, asked = (Metric("accuracy"),), False
        else:
            chosen, asked = (), False
        reports.append(Report(loss, loss if several else None,
                              stem(loss) + "_" if several else "", task, chosen, asked,
                              tuple(name for name, _ in op.measures)))
    for m in general:
        if m not in taken:
            problems.append((("train", "metrics"),
                             f"metric '{m.key}' applies to none of the losses "
                             f"({_fits(graph, losses)})"))
    return reports, problems


def _misfit(loss, op, task, m) -> str:
    if task is None:
        return (f"loss '{loss}' ({op}) has no target to compare with, so it has no metric "
                f"'{m.key}'; it is reported by its value alone")
    return (f"metric '{m.key}' does not apply to loss '{loss}' ({op}, {_TASKS[task]}); "
            f"its metrics are {', '.join(APPLIES[task])}")


_TASKS = {"classes": "class scores against class labels", "logits": "logits against 0/1 "
          "targets", "signs": "scores against ±1 labels", "values": "predictions against "
          "real-valued targets"}


def _fits(graph, losses) -> str:
    parts = []
    for loss in losses:
        d = graph.nodes[loss]
        task = d["op"].task if len(d["inputs"]) == 2 else None
        parts.append(f"{loss}: {', '.join(APPLIES[task]) if task else 'none'}")
    return "; ".join(parts) or "the network has none"


def report_keys(net) -> list[str]:
    """Every key `Model.evaluate` and the history report for `net` (without `val_`)."""
    return report_keys_of(net.graph, net.losses, net.train, net.label_inputs)


def report_keys_of(graph, losses, train, label_inputs) -> list[str]:
    reports, _ = plan(graph, losses, train, label_inputs)
    keys = ["loss"]
    for r in reports:
        keys += [r.key] if r.key else []
        keys += [r.prefix + m.key for m in r.metrics]
        keys += [r.prefix + name for name in r.measures]
    return keys


# ------------------------------------------------------------------------------ tallies

class Tally:
    """The loss and metrics of one pass over data, batch by batch:

        tally = Tally(model.program)
        tally.add(loss, values, batch)       # after each batch
        tally.result()                       # {'loss': .., 'accuracy': .., ...}

    A backend's values are keyed by the program's nodes (a layer's activation may be a
    node of its own, `unit:step`), so the program's graph names what each loss reads.
    """

    def __init__(self, program):
        net = program.net
        reports, _ = plan(net.graph, program.losses, net.train, net.label_inputs)
        self.parts = [_Part(r, program.graph.node(r.loss)) for r in reports
                      if r.key or r.metrics or r.measures]
        self.n, self.loss_sum = 0, 0.0

    def add(self, loss: float, values: dict, batch: dict, params: dict | None = None) -> None:
        """Count one batch: its total loss, and each loss's values from its inputs (read
        from `values`, the backend's, or `batch`, the data). `params` ({'layer.param':
        array}) serve the losses that read parameters (an RBM's contrastive divergence)."""
        size = len(next(iter(batch.values())))
        self.n += size
        self.loss_sum += loss * size
        for part in self.parts:
            part.add(values, batch, size, params or {})

    def merge(self, other: "Tally") -> None:
        """Add another tally of the same program (another rank's share of an epoch)."""
        self.n += other.n
        self.loss_sum += other.loss_sum
        for mine, theirs in zip(self.parts, other.parts):
            mine.merge(theirs)

    def result(self, final: bool = True) -> dict:
        """{'loss': mean total loss, ...}. Without `final`, the figures that are cheap to
        give at every step (no auc), for a progress bar under way."""
        out = {"loss": self.loss_sum / max(self.n, 1)}
        for part in self.parts:
            out.update(part.result(final))
        return out

    def confusions(self) -> dict:
        """{loss name: (matrix, class names)} for every loss whose metrics count classes:
        rows are true classes, columns predicted ones."""
        return {p.report.loss: (p.confusion, p.classes) for p in self.parts
                if p.confusion is not None}


class _Part:
    """One loss's share of a Tally."""

    def __init__(self, report: Report, node: Node):
        self.report, self.node = report, node
        self.names = {m.name for m in report.metrics}
        self.value_sum, self.n = 0.0, 0
        self.count = self.hits = self.elements = 0
        self.top = {m.k: 0 for m in report.metrics if m.name == "top_k_accuracy"}
        self.abs_sum = self.sq_sum = 0.0
        self.confusion, self.classes = None, None
        self.scores, self.truths = [], []
        self.unfit = None           # why the classification metrics could not be computed
        self.measure_sums = dict.fromkeys(report.measures, 0.0)
        self.rng = np.random.default_rng(0)     # the measures' draws (PLL's flipped units)

    def merge(self, other: "_Part") -> None:
        for k in ("value_sum", "n", "count", "hits", "elements", "abs_sum", "sq_sum"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k in self.top:
            self.top[k] += other.top[k]
        for k in self.measure_sums:
            self.measure_sums[k] += other.measure_sums[k]
        if other.confusion is not None:
            if self.confusion is None:
                self.confusion, self.classes = other.confusion.copy(), other.classes
            else:
                self.confusion += other.confusion
        self.scores += other.scores
        self.truths += other.truths
        self.unfit = self.unfit or other.unfit

    def add(self, values, batch, size, params):
        r, d = self.report, self.node
        xs = [_value(values, batch, i) for i in d.inputs]
        p = {local: params[key] for local, key in d.params.items() if key in params}
        self.n += size
        if r.key:
            # a loss that reads parameters is computed here on every backend (the cpu
            # backend keeps no loss values), with the parameters as they are now
            own = None if d.params else values.get(r.loss)
            if own is None:
                own = d.op.forward(RunContext(training=False), d.attrs, xs, p)
            self.value_sum += float(own) * size
        for name, measure in d.op.measures:
            self.measure_sums[name] += float(np.sum(measure(d.attrs, xs, p, self.rng)))
        if not r.metrics:
            return
        x, t = xs
        if self.names & set(REGRESSION):
            y = _sigmoid(x) if r.task == "logits" else x
            diff = y.astype(np.float64) - t.astype(np.float64)
            self.abs_sum += float(np.abs(diff).sum())
            self.sq_sum += float(np.square(diff).sum())
            self.elements += diff.size
        if self.names & set(CLASSIFICATION):
            self._classify(x, t)

    def _classify(self, x, t):
        view = _as_classes(self.report.task, x, t)
        if isinstance(view, str):
            self.unfit = view
            return
        k, pred, truth, scores = view
        if self.confusion is None or len(self.confusion) != k:
            self.confusion = np.zeros((k, k), dtype=np.int64)
            self.classes = list(range(k))
        self.confusion += np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
        self.count += len(truth)
        self.hits += int((pred == truth).sum())
        for top in self.top:
            if top >= k:
                self.top[top] += len(truth)
            else:
                best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
                self.top[top] += int((best == truth[:, None]).any(axis=1).sum())
        if "auc" in self.names:
            self.scores.append(scores if k > 2 else scores.reshape(-1))
            self.truths.append(truth)

    def result(self, final):
        r, out = self.report, {}
        if r.key:
            out[r.key] = self.value_sum / max(self.n, 1)
        for name, total in self.measure_sums.items():
            out[r.prefix + name] = total / max(self.n, 1)
        if self.unfit and (r.asked or self.count == 0):
            if r.asked:
                raise DataError(f"loss '{r.loss}': {self.unfit}, so its metrics "
                                f"{', '.join(m.key for m in r.metrics if m.name in CLASSIFICATION)}"
                                f" cannot be computed; ask only for "
                                f"{', '.join(REGRESSION)} of it")
            return out
        for m in r.metrics:
            value = self._metric(m, final)
            if value is not None:
                out[r.prefix + m.key] = value
        return out

    def _metric(self, m, final):
        name = m.name
        if name in REGRESSION:
            if not self.elements:
                return None
            mse = self.sq_sum / self.elements
            return {"mae": self.abs_sum / self.elements, "mse": mse, "rmse": math.sqrt(mse)}[name]
        if not self.count:
            return None
        if name == "accuracy":
            return self.hits / self.count
        if name == "top_k_accuracy":
            return self.top[m.k] / self.count
        if name == "auc":
            return auc(np.concatenate(self.scores), np.concatenate(self.truths)) if final else None
        return precision_recall_f1(self.confusion)[("precision", "recall", "f1").index(name)]


def _value(values, batch, name):
    v = values.get(name)
    return batch[name] if v is None else v


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x.astype(np.float64)) + 1.0)


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _as_classes(task, x, t):
    """(K, predicted class, true class, scores) per sample (or per element for binary
    targets), or the reason the targets are no classes."""
    if task == "classes" or (task == "values" and x.ndim == 2 and x.shape[1] > 1
                             and _one_hot(t)):
        truth = t.argmax(axis=1) if t.ndim == 2 else t.astype(np.int64)
        scores = x.astype(np.float64)
        return x.shape[1], x.argmax(axis=1), truth, _softmax(scores)
    if task == "values":
        if not np.all((t == 0) | (t == 1)):
            return "its targets are not 0/1 (or one-hot rows)"
        return 2, (x > 0.5).reshape(-1).astype(np.int64), t.reshape(-1).astype(np.int64), x
    threshold = 0.5 if task == "logits" else 0.0
    truth = (t > threshold).reshape(-1).astype(np.int64)
    return 2, (x > 0).reshape(-1).astype(np.int64), truth, x


def _one_hot(t) -> bool:
    return t.ndim == 2 and bool(np.all((t == 0) | (t == 1))) and bool(np.all(t.sum(axis=1) == 1))
