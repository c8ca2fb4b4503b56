"""flatten: lowered as reshape is (reshape.py); a file of its own so that a network with a
flatten imports only what it uses."""
from __future__ import annotations

from . import lowers
from .reshape import copy_backward, copy_forward

lowers("flatten", kind="forward")(copy_forward)
lowers("flatten", kind="backward")(copy_backward)
