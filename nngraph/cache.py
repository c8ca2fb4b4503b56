"""Where nngraph keeps what it works out once and reads back in later processes: generated
kernel modules (backends/cpu/codegen.py; numba's compiled code goes to NUMBA_CACHE_DIR or next to the
sources) and the named datasets parsed from the files they ship as (datasets.py)."""
from __future__ import annotations

import os


def cache_dir(*parts: str) -> str:
    """NNGRAPH_CACHE_DIR (default ~/.cache/nngraph), or a folder in it, created if need be."""
    root = os.environ.get("NNGRAPH_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "nngraph")
    path = os.path.join(root, *parts)
    os.makedirs(path, exist_ok=True)
    return path
