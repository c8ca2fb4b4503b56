"""The benchmark's peers: the same three networks in PyTorch (eager) and in ONNX Runtime,
started from nngraph's initial parameters.

Layouts: nngraph's dense W is (inputs, units), torch's Linear.weight is (units, inputs), so
it gets W.T; conv2d W is (filters, in_channels, kh, kw) in both. nngraph's LSTM has
W (F, 4H), U (H, 4H) and one bias b (4H), gates i, f, g, o like torch: weight_ih = W.T,
weight_hh = U.T, bias_ih = b, and bias_hh = 0 frozen (requires_grad False) so that torch
trains exactly nngraph's parameters: a second trainable bias would receive the same
gradient and double the bias' effective step.

Each peer runs at every thread count of PEER_THREADS and nngraph is compared with the
fastest (bench.best_of): on a loaded machine one thread can beat two, whose OpenMP barriers
wait for a descheduled thread. PyTorch's intra-op thread count is one setting for the whole
process, so it is set around each use (torch_threads); an ONNX Runtime session has its own
pool, so there is one session per count (ort_sessions).
"""
from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

THREADS = 2
"""PyTorch's thread count outside torch_threads, while nngraph runs."""
PEER_THREADS = (1, 2)
DEVICE = "cpu"
"""Where the torch peer runs: 'cpu', or 'cuda' against nngraph's cuda backend (use_cuda)."""
GPU_PEER = False
"""Whether the peer is the GPU one (use_cuda): one torch variant, no ONNX Runtime, inputs
copied in and outputs out by each predict. The tests set it alone, DEVICE left 'cpu', to run
the benchmark's GPU cases with the CPU's torch standing in for the GPU's."""


def use_cuda() -> None:
    """Run the torch peer on the GPU (torch CUDA eager); its variant is then one,
    'torch_cuda'. Its steps return loss.item(), which waits for the GPU, as nngraph's
    train_step reads its loss back: both timers are synchronised by the steps themselves."""
    global DEVICE, GPU_PEER
    if not torch.cuda.is_available():
        raise SystemExit("bench --backend cuda: this PyTorch has no CUDA device (a CPU "
                         "build, or no GPU): the peer, PyTorch CUDA eager, cannot run")
    DEVICE, GPU_PEER = "cuda", True


def use_threads(n: int = THREADS) -> None:
    torch.set_num_threads(n)


def variants(peer: str) -> dict:
    """{'torch_1t': 1, 'torch_2t': 2}: the names a peer is measured under, and their
    thread counts."""
    if GPU_PEER and peer == "torch":
        return {"torch_cuda": 0}
    return {f"{peer}_{n}t": n for n in PEER_THREADS}


@contextmanager
def torch_threads(n: int):
    """PyTorch at `n` intra-op threads inside the block, as it was after (n = 0: the GPU
    peer, whose thread count does not matter)."""
    if n == 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tensor(a) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.array(a, dtype=np.float32, copy=True)))


def _linear(params: dict, name: str) -> nn.Linear:
    w = params[f"{name}.W"]
    layer = nn.Linear(w.shape[0], w.shape[1])
    layer.weight = _tensor(w.T)
    layer.bias = _tensor(params[f"{name}.b"])
    return layer


def _conv(params: dict, name: str) -> nn.Conv2d:
    w = params[f"{name}.W"]
    layer = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]))
    layer.weight = _tensor(w)
    layer.bias = _tensor(params[f"{name}.b"])
    return layer


class MLP(nn.Module):
    def __init__(self, params: dict):
        super().__init__()
        self.hidden1 = _linear(params, "hidden1")
        self.hidden2 = _linear(params, "hidden2")
        self.logits = _linear(params, "logits")

    def forward(self, x):
        return self.logits(F.relu(self.hidden2(F.relu(self.hidden1(x)))))


class LeNet5(nn.Module):
    def __init__(self, params: dict):
        super().__init__()
        self.c1, self.c3 = _conv(params, "c1"), _conv(params, "c3")
        self.f5, self.f6 = _linear(params, "f5"), _linear(params, "f6")
        self.logits = _linear(params, "logits")

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c3(x)), 2)
        x = torch.flatten(x, 1)
        return self.logits(F.relu(self.f6(F.relu(self.f5(x)))))


class SequenceLSTM(nn.Module):
    def __init__(self, params: dict):
        super().__init__()
        w, u, b = params["rnn.W"], params["rnn.U"], params["rnn.b"]
        self.rnn = nn.LSTM(w.shape[0], u.shape[0], batch_first=True)
        self.rnn.weight_ih_l0 = _tensor(w.T)
        self.rnn.weight_hh_l0 = _tensor(u.T)
        self.rnn.bias_ih_l0 = _tensor(b)
        self.rnn.bias_hh_l0 = nn.Parameter(torch.zeros(b.shape), requires_grad=False)
        self.rnn.flatten_parameters()
        self.logits = _linear(params, "logits")

    def forward(self, x):
        _, (h, _) = self.rnn(x)
        return self.logits(h[-1])


MODULES = {"mlp": MLP, "lenet": LeNet5, "lstm": SequenceLSTM}


def torch_model(case: str, params: dict) -> nn.Module:
    """The torch twin of a benchmark network, holding copies of nngraph's `params`."""
    return MODULES[case](params).to(DEVICE)


def to_torch(batch: dict, device: str | None = None) -> dict:
    """The batch as torch tensors on `device` (the peer's DEVICE unless given)."""
    return {k: torch.from_numpy(v).to(device or DEVICE) for k, v in batch.items()}


class TorchTrainer:
    """One SGD-with-momentum step per call, returning the loss like nngraph's train_step."""

    def __init__(self, module: nn.Module, input_name: str, lr: float, momentum: float):
        self.module, self.input_name = module.train(), input_name
        trainable = [p for p in module.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(trainable, lr=lr, momentum=momentum)

    def __call__(self, batch: dict) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.module(batch[self.input_name]), batch["label"])
        loss.backward()
        self.opt.step()
        return loss.item()


def torch_predictor(module: nn.Module):
    """predict(x): the module's output for a host tensor x. On the GPU it copies x in and
    the output back to the host (which waits for the GPU), as nngraph's predict does."""
    module.eval()
    if not GPU_PEER:
        def predict(x):
            with torch.inference_mode():
                return module(x)
        return predict

    def predict_on_device(x):
        with torch.inference_mode():
            return module(x.to(DEVICE)).cpu()
    return predict_on_device


def ort_sessions(module: nn.Module, sample: np.ndarray, input_name: str,
                 threads=PEER_THREADS) -> dict:
    """Export `module` for the fixed shape of `sample` (static shapes let ORT specialise) and
    open it in ONNX Runtime once per intra-op thread count. Returns {threads: predict(x)}."""
    module.eval()
    fd, path = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:                          # the TorchScript exporter needs no onnxscript
                torch.onnx.export(module, (torch.from_numpy(sample),), path, dynamo=False,
                                  input_names=[input_name], output_names=["logits"])
            except TypeError:             # a torch without the `dynamo` switch
                torch.onnx.export(module, (torch.from_numpy(sample),), path,
                                  input_names=[input_name], output_names=["logits"])
        sessions = {n: _ort_open(path, n) for n in threads}
    finally:
        os.unlink(path)

    def predictor(session):
        return lambda x: session.run(None, {input_name: x})[0]
    return {n: predictor(session) for n, session in sessions.items()}


def _ort_open(path: str, threads: int):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
