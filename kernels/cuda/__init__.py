"""Hand-written numba-cuda kernels that the CUDA backend's generated code calls: the tiled
GEMM (gemm.py), reductions over rows and the batch (reduce.py), the optimizer updates over
the flat parameter buffer (optim.py); launch.py holds what they share. Importing them needs
a CUDA GPU with its driver, or numba's simulator (NUMBA_ENABLE_CUDASIM=1 before numba is
imported)."""
