"""Cheap whole-array checks for the hot paths of predict and train_step."""
import numpy as np

from ._jit import kernel


_EXPONENT = {4: (np.uint32, np.uint32(0x7F800000)),
             8: (np.uint64, np.uint64(0x7FF0000000000000))}


def all_finite(arr: np.ndarray) -> bool:
    """True when no value of the C-contiguous float32 or float64 array is NaN or infinite.

    A float is NaN or infinite exactly when its exponent bits are all ones, so the test runs
    on the bits as unsigned integers: a vectorised integer loop that reads the data once, with
    no temporary, several times faster than numpy's float64 sum. The bits are viewed here,
    not in the kernel: numba's array.view is slow to compile."""
    bits, mask = _EXPONENT[arr.itemsize]
    return _count_exponent(arr.reshape(-1).view(bits), mask) == 0


@kernel
def _count_exponent(bits, mask):
    count = 0
    for i in range(bits.size):
        count += (bits[i] & mask) == mask
    return count


def int_range(arr: np.ndarray) -> tuple[int, int]:
    """(min, max) of a non-empty integer array in one pass (numpy's min and max are two
    passes, and their fixed cost per call is most of checking a batch of class labels)."""
    return _min_max(arr.reshape(-1))


@kernel
def _min_max(flat):
    """(Selects, not min() and max(): numba compiles a function for each of those.)"""
    lo = hi = flat[0]
    for i in range(1, flat.size):
        v = flat[i]
        lo = v if v < lo else lo
        hi = v if v > hi else hi
    return lo, hi


def typical_calls(dtype, integers: bool = True) -> list:
    """(kernel, example arguments) of the checks a batch of float `dtype` features runs, and
    with `integers` those of its int64 inputs (labels, tokens), for compiling them ahead of
    the first batch."""
    bits, mask = _EXPONENT[np.dtype(dtype).itemsize]
    calls = [(_count_exponent, (np.zeros(1, bits), mask))]
    if integers:
        calls.append((_min_max, (np.zeros(1, np.int64),)))
    return calls
