"""Model: a compiled network with its parameters, optimizer state and a backend to run it.

    >>> import nngraph
    >>> model = nngraph.compile("specs/mnist_mlp.yaml", backend="reference", seed=0)
    >>> loss = model.train_step({"image": xb, "label": yb})
    >>> hist = model.fit(data, epochs=5, batch_size=64, validation=val)
    >>> model.evaluate(val)
    {'loss': 0.21, 'accuracy': 0.94}
    >>> model.confusion_matrices(val)["loss_1"][0]      # rows true, columns predicted
    >>> model.save("mnist.nnz"); model = nngraph.load_model("mnist.nnz")
"""
from __future__ import annotations

import math

import numpy as np

from . import initializers
from . import persist
from . import sampling
from .backends import DTYPES, executor
from .batch import as_batch
from .errors import DataError, ModelFileError, NNGraphError
from .graph import Network
from .memory import check_memory
from .metrics import Tally
from .optimizers import Optimizer
from .phases import Phases
from .program import build_program
from .subnet import Downstream



class _Predicts:
    """What Model and FrozenModel share: an executor, checked batches, predict."""

    def _run_on(self, runner) -> None:
        self.executor = runner
        self.backend = runner.name          # what really runs (see backends.executor)
        self._prepare = runner.prepare
        self._quick_predict = runner.quick_predict
        # {mode: inputs the backend checks for NaN and infinity itself, on the way}
        self._scanned_by = runner.checks_finite

    def _batch(self, data, labels: bool, mode: str | None = None, rows=None) -> dict:
        """The checked batch. `mode` (train, evaluate, predict) names the run it is for: a
        backend that compiles does it first, so that the checks' kernels are compiled with
        the rest (and, on two cores, beside them). For evaluate and predict the sampled
        inputs the data lacks are drawn here (`rows` of them where nothing else counts
        them); training draws them at each step (_train_batch)."""
        if mode and self._prepare:
            self._prepare(mode, self.state)
        # self.net declares every float input in the model's dtype (Network.with_float_dtype),
        # so that float64 data reaches a float64 model uncut and every message names float64
        batch = as_batch(self.net, {} if data is None and self.net.sampled_inputs else data,
                         require_labels=labels, unscanned=self._scanned_by.get(mode, ()))
        if mode in ("evaluate", "predict") and self.net.sampled_inputs:
            batch = sampling.fill(self.net, batch, self.seed, mode, rows=rows)
        return batch

    def _predict(self, params: dict, data, batch_size: int, n: int | None = None):
        if self.net.sampled_inputs:               # drawn first: the quick path takes arrays
            data = self._batch(data, labels=False, mode="predict", rows=n)
        elif n is not None:
            raise DataError(f"n (the rows to draw) is for networks with sampled inputs; "
                            f"'{self.net.name}' has none")
        if self._quick_predict is not None:       # a repeat of the last call's kind
            out = self._quick_predict(params, data, batch_size)
            if out is not None:
                return out
        batch = self._batch(data, labels=False, mode="predict")
        n = _batch_len(batch)
        if n <= batch_size:
            outs = self.executor.predict(params, self.state, batch)
        else:
            try:
                parts = [self.executor.predict(params, self.state,
                                               _slice(batch, i, batch_size))
                         for i in range(0, n, batch_size)]
            except DataError:   # a part's input check failed: say it of the whole array
                as_batch(self.net, data, require_labels=False)
                raise
            outs = {k: np.concatenate([p[k] for p in parts]) for k in self.program.outputs}
        return next(iter(outs.values())) if len(outs) == 1 else outs


class Model(_Predicts):
    def __init__(self, net: Network, backend: str = "reference", seed: int = 0,
                 dtype: str = "float32", device: int | None = None):
        if str(dtype) not in DTYPES:
            raise NNGraphError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        check_memory(net, self.dtype.name)        # before anything is allocated
        # float inputs, values and parameters all in the model's dtype, whatever the spec
        # declares for an input: see Network.with_float_dtype
        self.net, self.seed = net.with_float_dtype(self.dtype.name), int(seed)
        self.program = build_program(self.net)
        self._run_on(executor(self.program, backend, self.dtype, device=device))
        rng = np.random.default_rng(self.seed)
        self.params = {k: initializers.initialize(p.init, p.spec.shape, rng, p.spec.fan_in,
                                                  p.spec.fan_out, self.dtype)
                       for k, p in self.program.params.items()}
        self.params = self.executor.adopt(self.params)     # flat storage on the cpu backend
        self.state = {}
        for key, (layer, spec) in self.program.state.items():
            self.state.setdefault(layer, {})[key.split(".", 1)[1]] = np.full(
                spec.shape, spec.init, dtype=self.dtype)
        self.set_optimizer(self.net.train.get("optimizer"))
        # train.phases: fit runs the phases' own models over these parameters (phases.py)
        self.phases = Phases(self) if self.net.train.get("phases") else None
        self.step = 0                 # optimizer updates made so far
        self.epoch = 0                # epochs completed by fit
        self.history: dict = {}
        self.loaded = None            # what load_weights took from another model, if any

    # ------------------------------------------------------------------ set-up
    def set_optimizer(self, config: dict | None) -> None:
        """Replace the optimizer (its state starts afresh): {'type': 'adam', 'lr': 1e-3}."""
        self.optimizer = Optimizer(config)
        self.opt_state = self.optimizer.init_state(self.params, self.program.params)
        self.opt_state = self.executor.adopt_optimizer(self.optimizer, self.opt_state)

    @property
    def flat_state(self) -> dict:
        """Non-trainable state as {'bn1.running_mean': array}."""
        return {f"{layer}.{k}": v for layer, d in self.state.items() for k, v in d.items()}

    def _state_copy(self) -> dict:
        """Layer state for a computation that must not move the running statistics."""
        return {k: {s: v.copy() for s, v in d.items()} for k, d in self.state.items()}

    # ------------------------------------------------------------------ training
    def train_step(self, data) -> float:
        """One optimizer step on one batch; returns the loss before the update."""
        return self._train_batch(self._batch(data, True, "train"))[0]

    def _train_batch(self, batch: dict):
        """(loss, the values the metrics read) for one validated batch; a non-finite loss
        leaves the parameters untouched."""
        self._need_losses("train")
        batch = sampling.fill_training(self, batch)
        loss, values = self.executor.train_step(self.params, self.state, self.optimizer,
                                                self.opt_state, batch, self.step,
                                                [self.seed, self.step])
        if math.isfinite(loss):
            self.step += 1
        return loss, values

    def _update_only(self) -> float:
        """A data-parallel step with no sample on this rank (nngraph/dist.py)."""
        loss = self.executor.update_only(self.params, self.optimizer, self.opt_state, self.step)
        if math.isfinite(loss):
            self.step += 1
        return loss

    def gradients(self, data) -> dict:
        """{'c1.W': gradient, ...} of the total loss for one batch; parameters unchanged."""
        self._need_losses("compute gradients")
        state = self._state_copy()
        batch = sampling.fill_training(self, self._batch(data, True, "train"))
        _, grads = self.executor.gradients(self.params, state, batch, [self.seed, self.step])
        return grads

    def input_gradients(self, data, of: str | None = None, wrt=None) -> dict:
        """Gradients with respect to the inputs: of the total loss, or with `of` (an output
        name) of the sum of that output over the batch. `wrt` lists inputs (default: every
        float input). Saliency maps and the worked examples of backprop use this."""
        wrt = list(wrt or [n for n, i in self.net.inputs.items() if i.dtype.startswith("float")])
        if of is None:
            self._need_losses("compute gradients")
        elif of not in self.program.outputs:
            raise DataError(f"'{of}' is not an output of '{self.net.name}'; outputs are "
                            f"{', '.join(self.program.outputs)}")
        program = build_program(self.net, of, wrt)
        run = executor(program, "reference", self.dtype)
        state = self._state_copy()
        batch = sampling.fill_training(self, self._batch(data, of is None))
        _, grads = run.gradients(self.params, state, batch, [self.seed, self.step])
        return {k: grads[k] for k in wrt if k in grads}

    def fit(self, data=None, epochs: int | None = None, batch_size: int | None = None,
            validation=None, validation_split: float | None = None, shuffle: bool | None = None,
            verbose: int = 1, early_stopping: dict | None = None,
            checkpoint: str | None = None, callback=None) -> dict:
        """Train for `epochs` (default: the spec's train section) and return the history
        {'loss': [...], 'accuracy': [...], 'val_loss': [...], ...}. Shows a progress bar
        when verbose. `data` defaults to the spec's train.data, `shuffle` (the samples'
        order, anew each epoch) to its train.shuffle, else true. See nngraph.training.fit."""
        from .training import fit
        return fit(self, data, epochs, batch_size, validation, validation_split, shuffle,
                   verbose, early_stopping, checkpoint, callback)

    # ------------------------------------------------------------------ inference
    def predict(self, data=None, batch_size: int = 256, n: int | None = None):
        """The network's outputs: an array for one output, a dict for several. Sampled
        inputs the data lacks are drawn, one per row; `n` rows where every input is sampled
        (`model.predict(n=64)`), see nngraph/sampling.py."""
        return self._predict(self.params, data, batch_size, n)

    def predict_from(self, layer: str, values, batch_size: int = 256):
        """The outputs computed from `values` given to layer `layer` instead of what the
        network computes there: a VAE's decoder fed codes, `model.predict_from("z", codes)`.
        Runs only the layers downstream of `layer` (nngraph.subnet), with this model's
        parameters as they are now; raises DataError when that part is not a network of
        its own."""
        parts = self.__dict__.setdefault("_downstream", {})
        if layer not in parts:
            parts[layer] = Downstream(self, layer)
        return parts[layer].predict(values, batch_size)

    def freeze(self) -> "FrozenModel":
        """A copy of this model for inference only, over its parameters and layer state as
        they are now: see FrozenModel."""
        return FrozenModel(self)

    def evaluate(self, data, batch_size: int = 256) -> dict:
        """{'loss': mean total loss, 'accuracy': ..., ...}: the loss, each loss of a network
        with several by its name, and the metrics the spec asks for (accuracy for a
        classifier by default); see nngraph.metrics."""
        return self._evaluate(data, batch_size).result()

    def confusion_matrices(self, data, batch_size: int = 256) -> dict:
        """{loss name: (matrix, class names)} for each loss whose metrics count classes:
        matrix[i, j] is the number of samples (elements, for 0/1 targets) of class i
        predicted as j."""
        return self._evaluate(data, batch_size).confusions()

    def _evaluate(self, data, batch_size: int) -> Tally:
        self._need_losses("evaluate")
        batch = self._batch(data, labels=True, mode="evaluate")
        n, tally = _batch_len(batch), Tally(self.program)
        for i in range(0, n, batch_size):
            part = _slice(batch, i, batch_size)
            loss, values = self.executor.evaluate(self.params, self.state, part)
            tally.add(loss, values, part, self.params)
        return tally

    def _need_losses(self, what: str) -> None:
        if not self.program.losses:
            raise DataError(f"cannot {what}: the spec '{self.net.name}' declares no losses")

    # ------------------------------------------------------------------ files
    def save(self, path: str) -> None:
        """Write the whole model (spec, parameters, optimizer and training state) atomically."""
        persist.save_model(self, path)

    def load_weights(self, path: str, skip=()):
        """Copy the parameters of the model in `path` (a .nnz or .onnx file) into this one by
        layer name, as Keras' load_weights(by_name=True) does; layers the file lacks, and
        those in `skip`, keep their values; a layer whose shapes differ is an error naming
        it and both shapes (nothing is copied then). Returns what was loaded
        (nngraph.weights.Loaded), also kept as `self.loaded`."""
        from . import weights
        self.loaded = weights.apply(self, path, skip)
        return self.loaded

    def export_onnx(self, path: str, opset: int | None = None, dtype: str | None = None) -> str:
        """Write the inference graph (inputs to outputs, as predict computes it) as ONNX to
        `path`, atomically; returns the path. `opset` defaults to 18; `dtype` ('float32' or
        'float64') to the model's. Needs the onnx package (pip install nngraph[onnx]); raises
        nngraph.onnx.ExportError, an NNGraphError. See docs/onnx.md."""
        from .onnx import export_onnx
        return export_onnx(self, path, opset, dtype)

    def __repr__(self):
        return (f"<Model {self.net.name!r} backend={self.backend} dtype={self.dtype} "
                f"params={self.net.num_params:,} step={self.step}>")


def compile_network(net: Network, backend: str = "cpu", seed: int | None = None,
                    dtype: str = "float32", device: int | None = None,
                    weights: str | None = None) -> Model:
    """nngraph.compile for a loaded Network: the seed defaults to train.seed, and the
    parameters start from `weights` or the spec's train.init_from (weights.source)."""
    from .weights import source
    model = Model(net, backend=backend, seed=net.train.get("seed", 0) if seed is None else seed,
                  dtype=dtype, device=device)
    start = source(net, weights)
    if start is not None:
        model.load_weights(*start)
    return model


def load_model(path: str, backend: str | None = None, device: int | None = None) -> Model:
    """Rebuild a model saved with Model.save (nngraph.load_model). Raises ModelFileError for
    a bad or mismatching file; `backend` overrides the one the file names."""
    net, settings, saved = persist.read_model(path)
    try:
        model = Model(net, backend or settings["backend"], seed=settings["seed"],
                      dtype=settings["dtype"], device=device)
    except NNGraphError as e:
        if backend:                               # the caller's choice, not the file's
            raise
        raise ModelFileError(f"{path}: {e} (the file names backend {settings['backend']!r}; "
                             "load_model(path, backend='cpu') loads it on the CPU)") from None
    persist.restore(model, saved, settings, path)
    return model


def _batch_len(batch: dict) -> int:
    return len(next(iter(batch.values())))


def _slice(batch: dict, start: int, size: int) -> dict:
    return {k: v[start:start + size] for k, v in batch.items()}


class FrozenModel(_Predicts):
    """What Model.freeze() returns: the network's predict over a copy of the model's
    parameters and layer state, taken when it was frozen. Training the model or editing
    its parameters afterwards does not reach the copy, which nothing changes (its `params`
    are read-only views): freeze the model again to predict with new weights.

    As its weights never change, a frozen model on the CPU backend keeps the weight
    matrices of its large dense layers packed once in MKL's own layout, as ONNX Runtime
    does in its sessions. A Model, whose parameters may be edited in place between any two
    calls, has MKL pack them again in every product, which costs a little time
    (kernels/cpu/packed.py). Predictions equal the model's to float rounding: the packed
    product sums in another order. With nothing to pack (no dense layer that large,
    OpenBLAS, the reference backend) it runs the model's own compiled code on its copy."""

    def __init__(self, model: Model):
        self.net, self.seed, self.dtype = model.net, model.seed, model.dtype
        self.program, self.step = model.program, model.step
        self._run_on(executor(self.program, model.backend, self.dtype, frozen=True,
                              device=model.executor.device_index))
        self._params = {k: np.array(v, dtype=self.dtype) for k, v in model.params.items()}
        self._params = self.executor.adopt(self._params)   # flat storage on the cpu backend
        self.executor.pack()
        self.state = {layer: {k: v.copy() for k, v in d.items()}
                      for layer, d in model.state.items()}

    @property
    def params(self) -> dict:
        """{'c1.W': read-only view, ...} of the frozen parameters."""
        views = {}
        for k, v in self._params.items():
            views[k] = v.view()
            views[k].flags.writeable = False
        return views

    def predict(self, data=None, batch_size: int = 256, n: int | None = None):
        """The network's outputs: an array for one output, a dict for several (n: see
        Model.predict)."""
        return self._predict(self._params, data, batch_size, n)

    def __repr__(self):
        return (f"<FrozenModel {self.net.name!r} backend={self.backend} dtype={self.dtype} "
                f"params={self.net.num_params:,} step={self.step}>")
