"""Per-op lowerings of the CUDA backend: what each op's fused group becomes in the generated
module, one file per op (or family) named after it, as for the CPU (backends/lowering.py).

A rule reads its group through a site (backends/cpu/site.py: buffer names, shapes,
attributes, the ops' scalar code) and returns a Launch (a generated @cuda.jit kernel run
over `size` threads by a launcher of the same arguments), an Extern (calls of kernels/cuda,
`_gemm.gemm`, `_reduce.column_sums`, and generated launchers) or a View; or None, and the
group runs its numpy rule on host copies of its arrays (correct, slow)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...lowering import Call, Extern, Kernel, Registry, View

__all__ = ["Call", "Extern", "Launch", "View", "launcher", "lowers", "rule_for", "rules",
           "HOST_ONLY"]

HOST_ONLY: dict = {
    "reparameterize": "the VAE's sampling layer: its numpy rule draws from the same stream",
    "gaussian_kl": "the VAE's KL term: one vectorised numpy expression per direction",
    "contractive": "per-sample Jacobian products of the encoder, in numpy (ops/contractive.py)",
    "rbm": "a dense sigmoid layer with a visible bias; its numpy rule is one product",
    "contrastive_divergence": "Gibbs sampling of an RBM, in numpy (ops/_rbm.py)",
}
"""Ops whose groups run their numpy rule on host copies on purpose, with the reason (as the
cpu backend's REFERENCE_ONLY): added for the generative families, no device kernel yet."""

REGISTRY = Registry(__name__, __path__)
lowers = REGISTRY.lowers
rule_for = REGISTRY.rule_for
rules = REGISTRY.all


@dataclass
class Launch(Kernel):
    """A generated CUDA kernel: `body` runs in each of `size` threads (an expression of its
    arguments, `i` its index in a loop over the items with the grid's stride); `flat`: its arrays come flattened. The
    launcher first computes `scalars` ({name: host expression of the arguments}), passed
    to the kernel after the arrays, and after the launch runs `host` (lines that may
    return the kernel's result, a loss)."""
    size: str = "0"
    flat: bool = False
    scalars: dict = field(default_factory=dict)
    host: list = field(default_factory=list)


def launcher(name: str, args: list, body: list, size: str, doc: str = "") -> str:
    """Source of a generated helper `name`: a kernel (named after the helper's final name
    with _gpu, so that groups with the same code share it) and its launcher (host code,
    the same arguments) that runs it over `size` threads."""
    return "\n".join(
        ["@cuda.jit", f"def __KERNEL___gpu({', '.join(args)}):",
         f"    for i in range(cuda.grid(1), {size}, cuda.gridsize(1)):"] + ["    " + line for line in body] +
        ["", "", f"def {name}({', '.join(args)}):"] + ([f'    """{doc}"""'] if doc else []) +
        [f"    __KERNEL___gpu[_grid({size})]({', '.join(args)})", ""])
