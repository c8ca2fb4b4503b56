"""nngraph: a declarative neural-network compiler.

    >>> import nngraph
    >>> net = nngraph.load("specs/lenet5.yaml")
    >>> net.num_params
    44426
"""
from __future__ import annotations

from .errors import (DataError, Diagnostic, ModelFileError, NNGraphError, SearchError, SpecError,
                     TrainingError, TrainingWarning)
from .graph import Network

from .version import __version__
__all__ = ["load", "compile", "load_model", "import_onnx", "search", "Network", "SpecError", "DataError",
           "ModelFileError", "TrainingError", "TrainingWarning", "NNGraphError", "Diagnostic",
           "__version__"]


def load(spec) -> Network:
    """Parse, validate and shape-check a spec: a path (.yaml, .yml, .json), YAML text or a dict.

        >>> net = nngraph.load("specs/mnist_mlp.yaml")
        >>> print(net.summary())

    Raises `SpecError` listing every problem as FILE:LINE:COL: error[CODE]: message.
    """
    from .spec import load_any
    return load_any(spec)


def compile(spec, backend: str = "cpu", seed: int | None = None, dtype: str = "float32",
            device: int | None = None, weights: str | None = None):
    """Compile a spec (Network, path, YAML text or dict) into a trainable Model.

        >>> model = nngraph.compile("specs/lenet5.yaml", backend="reference", seed=0)
        >>> model.fit(epochs=1)

    backend: 'cpu' (fused Numba kernels), 'reference' (numpy interpreter, the oracle) or
    'cuda'. dtype: 'float32' or 'float64', what everything is computed in: parameters,
    values and float inputs (see Network.with_float_dtype; `model.net` declares them so).
    seed: of the initial parameters, the batch order and dropout; default the spec's
    train.seed, else 0. device: which GPU backend 'cuda' runs on (numba's numbering, default
    0); only for 'cuda'. weights: a .nnz or .onnx file whose parameters the model starts
    from, by layer name (Model.load_weights); default the spec's train.init_from, whose
    `skip` list applies either way.
    """
    from .model import compile_network
    return compile_network(load(spec), backend, seed, dtype, device, weights)


def load_model(path: str, backend: str | None = None, device: int | None = None):
    """Load a model saved with `Model.save`; raises ModelFileError for a bad file. backend
    and device as in compile (the backend defaults to the file's)."""
    from .model import load_model as _load_model
    return _load_model(path, backend, device)


def search(spec, trials: int | None = None, jobs: int = 1, storage: str | None = None,
           study: str | None = None, out: str | None = None, backend: str = "cpu",
           verbose: bool = True):
    """Hyperparameter search over the spec's `search:` section, with Optuna (the optional
    extra nngraph[search]); returns a SearchResult (best_value, best_params, best_spec,
    study). See nngraph/hpsearch/ and docs/search.md.

        >>> result = nngraph.search("specs/search/iris.yaml", trials=20)
    """
    from .hpsearch import search as _search
    return _search(spec, trials=trials, jobs=jobs, storage=storage, study=study, out=out,
                   backend=backend, verbose=verbose)


def import_onnx(path, backend: str = "cpu", dtype: str = "float32"):
    """An ONNX file as an nngraph Model: a spec built from its graph (layer names from the
    node names) with the file's weights and batchnorm statistics set into the parameters.

        >>> model = nngraph.import_onnx("lenet5.onnx", backend="reference")
        >>> model.predict(x); model.save("lenet5.nnz")

    Needs the onnx package. Raises nngraph.onnx.OnnxImportError (an NNGraphError) naming the
    operator, node and opset that nngraph's ops cannot express. See docs/onnx.md."""
    from .onnx import onnx_to_spec
    from .onnx.import_graph import set_weights
    spec, params, state = onnx_to_spec(path)
    model = compile(spec, backend=backend, seed=0, dtype=dtype)
    set_weights(model, params, state)
    return model
