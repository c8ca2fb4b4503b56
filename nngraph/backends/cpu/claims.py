"""How the two processes of a first compile share one list of calls (compiler.py and
compile_worker.py both read this)."""
from __future__ import annotations

import os
import shutil
import tempfile
import time

PRODUCTS_WAIT_S = 10.0
"""How long a process waits for the other to compile the BLAS products before it takes a
call that would compile them itself."""


class Claims:
    """Which process compiles which call of one list: the first to create a call's marker
    file takes it (O_EXCL makes that atomic between processes), so each process takes the
    next call when it is free. A marker `products_<kind>` says that the BLAS product of
    that kind ('s', 'd') is in numba's cache, or that the process compiling it is done
    trying: until then the other process takes no call that would compile it (a second
    compile of it would cost that process most of a second, for nothing)."""

    def __init__(self, path: str | None = None):
        self.path = path or tempfile.mkdtemp(prefix="nngraph-claims-")

    def take(self, index: int) -> bool:
        try:
            os.close(os.open(os.path.join(self.path, str(index)),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def set_products(self, kind: str) -> None:
        with open(os.path.join(self.path, f"products_{kind}"), "w"):
            pass

    def products(self, kinds) -> bool:
        return all(os.path.exists(os.path.join(self.path, f"products_{kind}"))
                   for kind in kinds)

    def each(self, gemm: list, ready):
        """The indices of the calls this process takes, each as it is taken: in order, the
        next one the other process has not taken, but none whose kernel calls gemm
        (gemm[i]) before ready() has said once that the products are in the cache."""
        pending, products = list(range(len(gemm))), False
        while pending:
            products = products or ready()
            index = next((i for i in pending if products or not gemm[i]), None)
            if index is None:
                time.sleep(0.005)
                continue
            pending.remove(index)
            if self.take(index):
                yield index

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
