"""The benchmark's three networks as nngraph specs, their synthetic data and FLOP counts.

The specs are kept here, not read from specs/, so that the benchmark measures the same
networks whatever the examples become. mnist_mlp and lenet5 in specs/ describe the same
architectures (they differ in their train sections, which the benchmark does not use).

Every network ends in 10 logits and a mean softmax cross-entropy and trains with
SGD, lr 0.05, momentum 0.9, which is what torch.optim.SGD(lr=0.05, momentum=0.9) does:
nngraph's v = 0.9 v - lr g; p += v equals torch's v = 0.9 v + g; p -= lr v at a fixed lr.
"""
from __future__ import annotations

import numpy as np

LR, MOMENTUM = 0.05, 0.9
CLASSES = 10

MLP = """\
nngraph: 1
name: bench_mlp
inputs:
  image: {shape: [784]}
  label: {shape: [], dtype: int64}
layers:
  - {op: dense, name: hidden1, units: 128, activation: relu, weight_init: he_normal}
  - {op: dense, name: hidden2, units: 64, activation: relu, weight_init: he_normal}
  - {op: dense, name: logits, units: 10}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train:
  optimizer: {type: sgd, lr: 0.05, momentum: 0.9}
"""

LENET = """\
nngraph: 1
name: bench_lenet5
inputs:
  image: {shape: [1, 28, 28]}
  label: {shape: [], dtype: int64}
layers:
  - {op: conv2d, name: c1, in: image, filters: 6, kernel: 5, activation: relu}
  - {op: maxpool2d, name: s2, size: 2}
  - {op: conv2d, name: c3, filters: 16, kernel: 5, activation: relu}
  - {op: maxpool2d, name: s4, size: 2}
  - {op: flatten, name: flat}
  - {op: dense, name: f5, units: 120, activation: relu}
  - {op: dense, name: f6, units: 84, activation: relu}
  - {op: dense, name: logits, units: 10}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train:
  optimizer: {type: sgd, lr: 0.05, momentum: 0.9}
"""

# The sequence model: 32 steps of 16 features -> LSTM(128) -> last state -> 10 logits.
LSTM_STEPS, LSTM_FEATURES, LSTM_UNITS = 32, 16, 128
LSTM = f"""\
nngraph: 1
name: bench_lstm
inputs:
  seq: {{shape: [{LSTM_STEPS}, {LSTM_FEATURES}]}}
  label: {{shape: [], dtype: int64}}
layers:
  - {{op: lstm, name: rnn, units: {LSTM_UNITS}}}
  - {{op: dense, name: logits, units: 10}}
outputs: [logits]
losses:
  - {{op: softmax_cross_entropy, in: [logits, label]}}
train:
  optimizer: {{type: sgd, lr: 0.05, momentum: 0.9}}
"""

SPECS = {"mlp": MLP, "lenet": LENET, "lstm": LSTM}
INPUT = {"mlp": "image", "lenet": "image", "lstm": "seq"}
SAMPLE_SHAPE = {"mlp": (784,), "lenet": (1, 28, 28), "lstm": (LSTM_STEPS, LSTM_FEATURES)}
TRAIN_BATCH = {"mlp": 64, "lenet": 64, "lstm": 32}
FLOPS_BATCH = 256                 # the MLP's FLOP-rate case
INFER_BATCHES = (1, 256)

MLP_LAYERS = ((784, 128), (128, 64), (64, 10))
# Forward: one multiply-add (2 FLOPs) per weight per sample. Backward: the weight gradient
# and the input gradient cost as much again each, so a training step is 3x the forward.
MLP_FORWARD_FLOPS = sum(2 * i * o for i, o in MLP_LAYERS)                       # 218,368
MLP_TRAIN_FLOPS = 3 * MLP_FORWARD_FLOPS                                         # 655,104
# The first layer's input gradient is never needed; without it a step does less work.
MLP_TRAIN_FLOPS_NEEDED = MLP_TRAIN_FLOPS - 2 * 784 * 128                        # 454,400
MLP_FLOPS_FORMULA = ("3 * 2 * (784*128 + 128*64 + 64*10) = 655,104 FLOPs per sample: "
                     "forward, weight gradient and input gradient GEMMs; bias, activations, "
                     "softmax-CE and the SGD update are not counted")


def make_batches(case: str, batch: int, count: int, seed: int = 0) -> list[dict]:
    """`count` distinct batches {input: float32 array, 'label': int64 array}, seeded.

    The image networks see real MNIST digits (mnist_5k, pixels in [0, 1]) with their labels,
    so that they learn while they are timed: on uniform noise with random labels the MLP's
    ReLUs all die within a few hundred steps, its gradients become 0 and the momentum decays
    into subnormal floats, which then dominate the time of every framework. Sequences are
    standard normal with random labels (tanh and sigmoid units do not die)."""
    rng = np.random.default_rng(seed)
    shape = (batch, *SAMPLE_SHAPE[case])
    if case == "lstm":
        return [{INPUT[case]: rng.standard_normal(shape).astype(np.float32),
                 "label": rng.integers(0, CLASSES, batch).astype(np.int64)}
                for _ in range(count)]
    from nngraph.datasets import load_dataset
    x, y = load_dataset("mnist_5k")
    out = []
    for _ in range(count):
        take = rng.choice(len(x), size=batch, replace=len(x) < batch)
        out.append({INPUT[case]: np.ascontiguousarray(x[take].reshape(shape)),
                    "label": y[take].astype(np.int64)})
    return out
