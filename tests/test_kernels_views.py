"""The views and runs of kernels/cpu/_views.py that the kernels and the generated code use
in place of numba's reshape and of short copy loops."""
import numpy as np
import pytest

from kernel_harness import DTYPES


def test_flat_and_rows_views():
    """_views.flat / rows: views of the same memory in the new shape (what the kernels write
    through them lands in the array), rows leaves out a partial last row and gives (0, 0) for
    a width below 1, and arrays that are not C-contiguous are refused at compile time."""
    import numba

    from nngraph.kernels.cpu._views import flat, rows

    @numba.njit
    def views(a, width):
        f = flat(a)
        m = rows(f, width)
        f[0] = -1.0
        m[m.shape[0] - 1, m.shape[1] - 1] = -2.0
        return f.shape, m.shape, m.strides

    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert views(a, 5) == ((24,), (4, 5), (20, 4))
    assert a.reshape(-1)[0] == -1 and a.reshape(-1)[19] == -2 and a.reshape(-1)[23] == 23
    b = np.arange(6.0)
    assert views(b, 6) == ((6,), (1, 6), (48, 8))

    @numba.njit
    def empty(a, width):
        return rows(flat(a), width).shape

    assert empty(b, 0) == (0, 0) and empty(b, -3) == (0, 0) and empty(b, 7) == (0, 7)
    with pytest.raises(numba.core.errors.TypingError, match="C-contiguous"):
        empty(np.ones((4, 4))[:, ::2], 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_copy_and_add_runs(dtype):
    """_views.copy_run / add_run: count values from src[start:] to dst[at:] (added there),
    in vectors of 8 and then one by one, nothing outside the run touched; arrays of two
    dtypes are refused at compile time."""
    import numba

    from nngraph.kernels.cpu._views import add_run, copy_run

    @numba.njit
    def runs(dst, at, src, start, count, add):
        if add:
            add_run(dst, at, src, start, count)
        else:
            copy_run(dst, at, src, start, count)

    src = np.arange(1, 41, dtype=dtype)
    for count in (0, 3, 8, 11, 24, 29):
        for add in (False, True):
            dst, want = np.full(40, 7, dtype), np.full(40, 7, dtype)
            runs(dst, 2, src, 5, count, add)
            want[2:2 + count] = (want[2:2 + count] if add else 0) + src[5:5 + count]
            assert np.array_equal(dst, want), (count, add)
    with pytest.raises(numba.core.errors.TypingError, match="one dtype"):
        runs(np.zeros(4, np.float32), 0, np.zeros(4), 0, 4, False)
