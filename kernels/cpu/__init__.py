"""Hand-written Numba kernels that generated code calls (see DESIGN.md)."""
