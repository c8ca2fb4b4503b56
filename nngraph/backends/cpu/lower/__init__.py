"""Per-op lowerings of the CPU backend: what each op's fused group becomes in the generated
module. One file here per op (or family of ops) registers its rules:

    @lowers("dense", "forward", calls=())
    def dense_forward(site) -> Kernel | Extern | View | None: ...

A rule reads the group through its `site` (buffer names, shapes, attributes; see
site.Site) and returns one of three things (backends/lowering.py), turned into source only
when the module is written:

    Kernel  a generated njit kernel (its arguments and body) and the driver's call of it
    Extern  calls of hand-written kernels of kernels/cpu (_module.function), with the
            generated helpers they need (an activation's epilogue, an unrolled pooling)
    View    no code: the group's output is a view of its input (flatten, reshape)

or None, and the group runs the op's numpy reference rule from the driver (correct, slow):
an op works on the CPU backend the day it is registered and gets fast when it gets a file
here. `calls` names the hand-written kernels a rule may call, so that a test can check that
every hand-written kernel is reachable; REFERENCE_ONLY names the ops that have no rule on
purpose, and why.
"""
from __future__ import annotations

from ...lowering import KINDS, Call, Extern, Kernel, Registry, Rule, View

__all__ = ["KINDS", "Call", "Extern", "Kernel", "Rule", "View", "lowers", "rule_for", "rules",
           "REFERENCE_ONLY"]

REGISTRY = Registry(__name__, __path__)
RULES = REGISTRY.rules           # (op name, kind) -> Rule; op "*elementwise": any scalar op
lowers = REGISTRY.lowers
rule_for = REGISTRY.rule_for
rules = REGISTRY.all

REFERENCE_ONLY: dict = {
    "channel_shuffle": "added for ONNX zoo imports (ShuffleNet); one numpy swapaxes copy",
    "pad2d": "added for ONNX imports (Pad, asymmetric pool pads); one np.pad (or its adjoint)",
    "lrn": "added for ONNX zoo imports (AlexNet, GoogLeNet); its numpy rule is vectorised "
           "over the whole batch and no fused kernel has been written yet",
    "prelu": "added for ONNX zoo imports; its numpy rule is one vectorised where() per "
             "direction and no fused kernel has been written yet",
    "scale": "added for ONNX zoo imports (Caffe's Scale); one vectorised numpy product-sum",
    "global_maxpool2d": "added for ONNX imports; its numpy rule is one max and one argmax scatter",
    "rbm": "one BLAS product and a sigmoid per direction in numpy; fine-tuned DBNs that need "
           "speed can load its weights into a dense sigmoid layer (train.init_from)",
    "contrastive_divergence": "Gibbs sampling and the CD statistics are a few BLAS products "
                              "per step in numpy, drawing the node's counter-based stream",
    "contractive": "a penalty on per-sample Jacobians (batch x units x inputs): its numpy rule "
                   "is a few batched matmuls/einsums per encoder layer, BLAS-bound already",
    "reparameterize": "a VAE's sampling layer (two small code-sized inputs); its numpy rule "
                      "draws the same counter-based stream as the kernels would",
    "gaussian_kl": "a VAE's KL loss over the code (16 values a sample): one vectorised numpy "
                   "expression per direction",
}
"""Ops that run their numpy rule on purpose, with the reason."""
