"""Generated modules as files: written once under the cache directory, named by the hash of
their source, and imported (numba then finds its compiled code beside them)."""
from __future__ import annotations

import hashlib
import importlib.util
import operator
import os
import sys

from ...cache import cache_dir
from ...ir import ident


def call_driver(driver, views: dict, runtime):
    """Run generated driver `driver` (train, evaluate or predict, or a form of one) on
    `views`: it takes `R`, then each buffer it uses, the parameters naming them (a wrapper's
    are those of the driver it wraps, `__wrapped__`)."""
    try:
        take = driver.takes
    except AttributeError:
        take = driver.takes = _taker(driver)
    return driver(runtime, *take(views))


def _taker(driver):
    """A function of the views giving the tuple of `driver`'s buffer arguments, at C speed
    (operator.itemgetter): a batch-1 predict calls it on every call."""
    code = getattr(driver, "__wrapped__", driver).__code__
    names = code.co_varnames[1:code.co_argcount]
    if len(names) == 1:
        name, = names
        return lambda views: (views[name],)
    return operator.itemgetter(*names) if names else lambda views: ()


def module_file(name: str, source: str) -> tuple[str, str]:
    """(module name, file under the cache directory) of generated `source`."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    mod_name = f"nngraph_gen_{ident(name)}_{digest}"
    return mod_name, os.path.join(cache_dir(), mod_name + ".py")


def load_module(name: str, source: str):
    """Write `source` under the cache directory (once) and import it; (module, its file)."""
    mod_name, path = module_file(name, source)
    if mod_name in sys.modules:
        return sys.modules[mod_name], sys.modules[mod_name].__file__
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module, path
