"""What the CUDA loss lowerings share with the CPU ones: where a loss's gradient goes."""
from ...cpu.lower._losses import gradient_target  # noqa: F401
