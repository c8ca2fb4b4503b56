"""The training loop behind Model.fit: epochs of shuffled mini-batches, metrics, validation,
a progress bar, early stopping and checkpoints.

Every random choice is derived from (seed, epoch) or (seed, step), never from a running
generator, so training that stops after a checkpoint and resumes from it gives exactly the
same parameters as training that never stopped.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings

import numpy as np

from . import dist
from .data import load_training_data
from .errors import DataError, TrainingError, TrainingWarning
from .metrics import Tally, higher_is_better
from .phases import check_phased
from .progress import ProgressBar

# _Watch says each thing once per fit(): every fit that goes wrong should hear of it
warnings.filterwarnings("always", category=TrainingWarning)

CHECKPOINT_S = 30.0
"""A checkpoint is written when this long has passed since the last one, and after the last
epoch (or an early stop, or a Ctrl-C): tiny networks run thousands of epochs a minute, and
writing a model file after each of them took most of their training time."""

LINES = 50
"""With more epochs than this, a progress line is printed for every k-th epoch only, so
that about LINES lines are printed (and the last epoch's)."""


def fit(model, data=None, epochs=None, batch_size=None, validation=None,
        validation_split=None, shuffle=None, verbose=1, early_stopping=None,
        checkpoint=None, callback=None) -> dict:
    net = model.net
    spec_train = net.train
    if data is None:
        if "data" not in spec_train:
            raise DataError(f"no training data: pass data to fit(), or give the spec "
                            f"'{net.name}' a train.data section")
        data, spec_val = load_training_data(net)
        validation = spec_val if validation is None else validation
        data = {k: v for k, v in data.items()}
    train = model._batch(data, labels=True, mode="train")
    if validation_split:
        train, split = _split_tail(train, validation_split)
        validation = split if validation is None else validation
    val = model._batch(validation, labels=True) if validation is not None else None
    shuffle = bool(spec_train.get("shuffle", True) if shuffle is None else shuffle)
    if model.phases is not None:
        check_phased(model)
        if epochs is None:          # the rest of the schedule, or all of it once more
            left = model.phases.total_epochs - model.epoch
            epochs = left if left > 0 else model.phases.total_epochs
    epochs = int(spec_train.get("epochs", 1) if epochs is None else epochs)
    batch_size = int(spec_train.get("batch_size", 32) if batch_size is None else batch_size)
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    n = len(next(iter(train.values())))
    if n == 0:
        raise DataError("the training data holds no samples")
    stopper = _EarlyStopping(early_stopping or spec_train.get("early_stopping"), val is not None)
    world = dist.world()
    if world is not None:                  # data-parallel (nngraph/dist.py): rank 0 speaks
        dist.check_trainable(model)
        model.executor.reduce = world.averager()
        verbose = verbose if world.rank == 0 else 0
        checkpoint = checkpoint if world.rank == 0 else None
    try:
        return _epochs(model, train, val, n, epochs, batch_size, shuffle, verbose, stopper,
                       checkpoint, callback)
    finally:
        model.executor.reduce = None


def _epochs(model, train, val, n, epochs, batch_size, shuffle, verbose, stopper, checkpoint,
            callback) -> dict:
    watch = _Watch(model)
    steps = math.ceil(n / batch_size)
    first, last = model.epoch, model.epoch + epochs
    every = max(1, math.ceil(epochs / LINES))
    saved_at, saved_epoch = time.monotonic(), None
    with _Interrupts(checkpoint is not None) as interrupt:
        for epoch in range(first, last):
            shown = verbose and ((epoch + 1 - first) % every == 0 or epoch + 1 == last
                                 or epoch == first)
            if model.phases is not None:
                logs = _phase_epoch(model, train, val, epoch, last, n, steps, batch_size,
                                   shuffle, shown, checkpoint, callback)
                stopper.update(logs)
                early = stopper.should_stop
            else:
                early = _epoch(model, train, val, epoch, last, n, steps, batch_size, shuffle,
                               shown, stopper, checkpoint, saved_epoch, callback, watch)
            stop = early or interrupt.requested
            if checkpoint and (stop or epoch + 1 == last
                               or time.monotonic() - saved_at >= CHECKPOINT_S):
                model.save(checkpoint)
                saved_at, saved_epoch = time.monotonic(), model.epoch
            if early and verbose:
                print(f"Early stopping: {stopper.monitor} did not improve for "
                      f"{stopper.patience} epochs (best {stopper.sign * stopper.best:.4f})")
            if interrupt.requested:
                print(f"interrupted: saved {checkpoint} after epoch {model.epoch}")
            if stop:
                break
    return model.history


class _Interrupts:
    """While training with a checkpoint: the first Ctrl-C ends training after the epoch
    under way, which is then saved (a model file holds whole epochs, so that resuming is
    exact); a second one stops at once, the checkpoint holding the epoch saved last."""

    def __init__(self, active: bool):
        self.active = active and threading.current_thread() is threading.main_thread()
        self.requested, self.previous = False, None

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this epoch, then saving (Ctrl-C again to stop now)",
              flush=True)

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.previous)
        return False


def _epoch(model, train, val, epoch, last, n, steps, batch_size, shuffle, verbose,
           stopper, checkpoint, saved_epoch, callback, watch) -> bool:
    """One epoch of training; whether early stopping ends training after it."""
    order = _order(model, epoch, n, shuffle)
    bar = ProgressBar(steps, epoch + 1, last) if verbose else None
    tally = Tally(model.program)
    averager = model.executor.reduce
    def batch_at(i):
        idx = order[i * batch_size:(i + 1) * batch_size]
        weight = 1.0
        if averager is not None:            # this rank's share of the global batch
            lo, hi = averager.world.share(len(idx))
            idx, weight = idx[lo:hi], (hi - lo) / len(idx)
        return {k: np.ascontiguousarray(v[idx]) for k, v in train.items()}, weight

    upcoming = batch_at(0) if steps else None
    values = {}
    for i in range(steps):
        (batch, weight), upcoming = upcoming, batch_at(i + 1) if i + 1 < steps else None
        if upcoming is not None and upcoming[1]:
            model.executor.stage(upcoming[0])   # its copy to a GPU overlaps this step
        if averager is not None:
            averager.weight = weight
        if weight:
            loss, values = model._train_batch(batch)
        else:                                   # a rank without a sample of a small batch
            loss = model._update_only()
        if not math.isfinite(loss):
            raise TrainingError(_nan_message(loss, epoch, i, steps, model, checkpoint,
                                             saved_epoch))
        if weight:
            tally.add(loss, values, batch, model.params)
        watch.step(loss)
        if bar and bar.due(i + 1):
            bar.update(i + 1, tally.result(final=False))
    if averager is not None:
        averager.world.merge(tally)
    logs = tally.result()
    watch.epoch_end(epoch + 1, logs["loss"], values)
    _close_epoch(model, epoch, logs, val, bar)
    improved = stopper.update(logs)
    if improved and checkpoint and stopper.active:
        model.save(_best_path(checkpoint))
    if callback:
        callback(epoch + 1, logs)
    return stopper.should_stop


def _order(model, epoch, n, shuffle):
    """The samples' order in epoch `epoch`: a permutation drawn from (seed, epoch), which
    resuming from a checkpoint draws again."""
    return np.random.default_rng([model.seed, epoch]).permutation(n) if shuffle \
        else np.arange(n)


def _close_epoch(model, epoch, logs, val, bar) -> None:
    """What ends every epoch, phased or not: the held-out figures (val_*) added to `logs`,
    the epoch counted, `logs` appended to the history, the progress line closed."""
    if val is not None:
        logs.update({f"val_{k}": v for k, v in model.evaluate(val).items()})
    model.epoch = epoch + 1
    for k, v in logs.items():
        model.history.setdefault(k, []).append(v)
    if bar:
        bar.finish(logs)


def _phase_epoch(model, train, val, epoch, last, n, steps, batch_size, shuffle, verbose,
                checkpoint, callback) -> dict:
    """One epoch of phased training; returns its logs: each phase's mean loss as
    NAME_loss, `loss` the mean over every step, and the validation figures of the whole
    network (every loss) as val_*."""
    phases = model.phases
    stage = phases.stage_at(epoch)
    order = _order(model, epoch, n, shuffle)
    turns = [ph for ph, k in stage.phases for _ in range(k)]
    bar = ProgressBar(steps, epoch + 1, last) if verbose else None
    sums: dict = {}
    for i in range(steps):
        idx = order[i * batch_size:(i + 1) * batch_size]
        batch = {k: np.ascontiguousarray(v[idx]) for k, v in train.items()}
        phase = turns[i % len(turns)]
        loss, _ = phases.train_batch(phase, batch)
        if not math.isfinite(loss):
            raise TrainingError(f"the loss of phase '{phase['name']}' became {loss} at epoch "
                                f"{epoch + 1}, batch {i + 1} of {steps}; training stopped "
                                "and that update was not applied. Try a smaller learning "
                                "rate for that phase.")
        total, count = sums.get(phase["name"], (0.0, 0))
        sums[phase["name"]] = (total + loss, count + 1)
        if bar and bar.due(i + 1):
            bar.update(i + 1, _phase_logs(sums))
    logs = _phase_logs(sums)
    _close_epoch(model, epoch, logs, val, bar)
    if callback:
        callback(epoch + 1, logs)
    return logs


def _phase_logs(sums: dict) -> dict:
    logs = {f"{name}_loss": total / count for name, (total, count) in sums.items()}
    steps = sum(c for _, c in sums.values())
    logs["loss"] = sum(t for t, _ in sums.values()) / max(steps, 1)
    return logs


class _Watch:
    """Signs, at the end of each epoch until one is seen, that training goes wrong in a way
    the loss alone does not tell: a loss's sigmoid outputs stuck at 0 or 1 (where the
    sigmoid's gradient all but vanishes, as when an autoencoder collapses to black
    images), and a loss that grew well above its first batch's. Each is said once, as a
    TrainingWarning."""

    STUCK = 0.95        # this fraction of the outputs ...
    EDGE = 1e-4         # ... within this of 0 or 1
    GROWTH = 10.0       # an epoch's mean loss this many times the first batch's

    def __init__(self, model):
        g = model.program.graph
        self.model, self.first, self.said = model, None, set()
        self.sigmoids = [(l, g.node(l).inputs[0]) for l in model.program.losses
                         if g.node(l).inputs and
                         getattr(g.node(g.node(l).inputs[0]).op, "name", "") == "sigmoid"]
        # a loss whose inputs get no gradient is a surrogate whose value need not fall (the
        # free-energy gap of contrastive divergence grows as the model sharpens)
        self.surrogate = any(g.node(l).op.differentiable_inputs == ()
                             for l in model.program.losses)

    def step(self, loss: float) -> None:
        if self.first is None:
            self.first = loss

    def epoch_end(self, epoch: int, mean_loss: float, values: dict) -> None:
        for loss, node in self.sigmoids:
            y = values.get(node)
            if y is None or ("stuck", loss) in self.said:
                continue
            stuck = float(np.mean((y < self.EDGE) | (y > 1 - self.EDGE)))
            if stuck >= self.STUCK:
                self._say(("stuck", loss), self._stuck(loss, node, stuck, epoch))
        if self.first and self.first > 0 and mean_loss > self.GROWTH * self.first \
                and "grew" not in self.said and not self.surrogate:
            lr = self.model.optimizer.config.get("lr")
            self._say("grew", f"the loss rose from {self.first:.4g} (first batch) to "
                              f"{mean_loss:.4g} (mean of epoch {epoch}): the learning rate"
                              f"{f' ({lr:g})' if lr else ''} is likely too high for it")

    def _stuck(self, loss, node, stuck, epoch) -> str:
        g = self.model.program.graph
        d = g.node(loss)
        layer = node.split(":")[0]
        msg = (f"after epoch {epoch}, {stuck:.0%} of the sigmoid outputs of '{layer}' are "
               f"within {self.EDGE:g} of 0 or 1, where the sigmoid's gradient all but "
               f"vanishes: they barely learn any more. Lower the learning rate")
        if d.op.task == "values":
            msg += (f", or drop the sigmoid from '{layer}' and train its logits with "
                    f"sigmoid_cross_entropy (targets in [0, 1]) instead of {d.op.name}")
        per_sample = int(np.prod(g.node(node).shape))
        if d.op.name == "squared_error" and per_sample > 1:
            msg += (f"; squared_error adds up each sample's {per_sample} values, so its "
                    f"gradients are {per_sample}/2 times those of mse, the mean")
        return msg

    def _say(self, key, message: str) -> None:
        self.said.add(key)
        warnings.warn(message, TrainingWarning, stacklevel=6)     # the caller of Model.fit


def _split_tail(batch: dict, fraction: float):
    n = len(next(iter(batch.values())))
    cut = n - int(round(n * fraction))
    if not 0 < cut < n:
        raise DataError(f"validation_split {fraction} leaves no training or no validation "
                        f"samples out of {n}")
    return ({k: v[:cut] for k, v in batch.items()}, {k: v[cut:] for k, v in batch.items()})


def _best_path(checkpoint: str) -> str:
    root, ext = os.path.splitext(checkpoint)
    return f"{root}.best{ext or '.nnz'}"


def _nan_message(loss, epoch, i, steps, model, checkpoint, saved_epoch=None) -> str:
    msg = (f"the loss became {loss} at epoch {epoch + 1}, batch {i + 1} of {steps} "
           f"(update {model.step + 1}); training stopped and that update was not applied")
    if checkpoint and os.path.exists(checkpoint):
        when = f" (epoch {saved_epoch})" if saved_epoch is not None else ""
        msg += f"; the last good checkpoint {checkpoint}{when} is intact"
    return msg + ". Try a smaller learning rate."


class _EarlyStopping:
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, config, has_validation: bool):
        self.active = config is not None
        config = config or {}
        self.monitor = config.get("monitor", "val_loss" if has_validation else "loss")
        self.patience = config.get("patience", 0 if not self.active else 3)
        self.min_delta = config.get("min_delta", 0.0)
        self.sign = -1 if higher_is_better(self.monitor) else 1
        self.best, self.bad = math.inf, 0

    def update(self, logs: dict) -> bool:
        if self.monitor not in logs:
            if self.active:
                raise DataError(f"early stopping monitors '{self.monitor}', which this "
                                f"training does not report (it reports {', '.join(logs)})")
            return False
        value = self.sign * logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.bad = value, 0
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.active and self.bad >= max(self.patience, 1)
