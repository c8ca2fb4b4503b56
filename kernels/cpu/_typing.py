"""Two pieces of numba's type inference that do work whose result is thrown away.

- Operators on scalars. numba types `a + b` by trying each template registered for
  operator.add; the one for arrays (npydecl.NumpyRulesArrayOperator) first finds the numpy
  ufunc loop for the argument types and only then returns None when no argument is an array.
  For our kernels' scalar arithmetic that loop search ran ~4,000 times in a LeNet-5 compile.
  install() makes that template return None at once when no argument (or optional argument)
  is an array, which is what it returned anyway.
- Error messages that nobody reads. Typing a global (range, np.empty, math.inf) first asks
  typeof(), whose failure builds a ValueError, and each template that does not match adds its
  error's text; ~7,700 such messages in a LeNet-5 compile. numba marks their text up inside
  colorama's init()/deinit(), which wrap and unwrap sys.stdout and sys.stderr for each one,
  while nothing is printed. Where colorama has nothing to translate (not Windows), install()
  leaves the streams alone; the markup itself, the text, is the same.

Together: 17.53M -> 16.78M Python calls for LeNet-5's one-process cold compile (-4.3%).
"""
import os

from numba.core import errors, types
from numba.core.typing import npydecl


class _Streams:
    """colorama's ColorShell where there is nothing to convert: the streams stay as they are."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def _involves_array(args) -> bool:
    return any(isinstance(a.type if isinstance(a, types.Optional) else a, types.ArrayCompatible)
               for a in args)


def install() -> bool:
    """Once per process; leaves a numba whose internals differ from the ones described as
    they are. Whether the operator template is patched."""
    operator = getattr(npydecl, "NumpyRulesArrayOperator", None)
    if operator is not None and not getattr(operator, "_nngraph_scalars", False):
        generic = operator.generic

        def scalar_first(self, args, kws):
            return generic(self, args, kws) if _involves_array(args) else None

        operator.generic = scalar_first
        operator._nngraph_scalars = True
    if os.name != "nt" and hasattr(errors, "ColorShell") \
            and hasattr(errors, "HighlightColorScheme"):
        errors.ColorShell = _Streams
    return bool(operator is not None and getattr(operator, "_nngraph_scalars", False))
