"""nngraph's changes to numba's internals (kernels/cpu/_patches.py): in effect by default on
the numba this runs, each one off with NNGRAPH_NUMBA_PATCHES, and kernels compute the same
values either way. Each case runs in a process of its own: the patches apply at import."""
import json
import os
import subprocess
import sys

SCRIPT = """
import json, numpy as np
from nngraph.kernels.cpu import _patches
from nngraph.kernels.cpu._jit import kernel

@kernel(inline=True)
def _twice(v):
    return 2 * v

@kernel
def f(x, y):
    for i in range(x.size):
        y[i] = _twice(x[i]) + 1.5 * x[i] * x[i]

x = np.linspace(-3, 3, 101)
y = np.zeros_like(x)
f(x, y)
print(json.dumps({"applied": _patches.applied(), "y": y.tolist()}))
"""


def run(tmp_path, setting):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / setting.replace(",", "_")))
    if setting != "default":
        env["NNGRAPH_NUMBA_PATCHES"] = setting
    script = tmp_path / "patched.py"          # a file: numba caches what it compiles
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_patches_apply_switch_off_and_change_no_value(tmp_path):
    from nngraph.kernels.cpu import _patches
    default = run(tmp_path, "default")
    tested = bool(_patches.wanted())
    assert default["applied"][0] == "cache"
    if tested:                          # a numba the speed patches know: all of them apply
        assert set(default["applied"]) == {"cache", *_patches.SPEED}
    off = run(tmp_path, "0")
    assert off["applied"] == ["cache"]
    some = run(tmp_path, "-passes,-inline")
    assert "passes" not in some["applied"] and "inline" not in some["applied"]
    assert off["y"] == default["y"] == some["y"]


def test_a_misspelt_patch_is_an_error(monkeypatch):
    from nngraph.kernels.cpu import _patches
    monkeypatch.setenv("NNGRAPH_NUMBA_PATCHES", "-pases")
    try:
        _patches.wanted()
    except ValueError as e:
        assert "no patch named pases" in str(e) and "passes" in str(e)
    else:
        assert not _patches.TESTED[0] <= tuple(map(int, __import__("numba").__version__
                                                   .split(".")[:2])) <= _patches.TESTED[1]
