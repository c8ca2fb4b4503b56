"""What the benchmark ran on, for its JSON document: the CPU and the instruction sets that
matter to the kernels, the cores this process may use and the load on them, numba's target,
and the BLAS and thread pools of nngraph and its peers. A ratio from one machine says
little about another without these: MKL takes other code paths on AMD than on Intel CPUs,
AVX-512 and AMX change what a product costs, and a busy core halves a 2-thread pool.

    m = describe()          # the document's "machine" section
    summary(m, load=2)      # one line for the log
"""
from __future__ import annotations

import ctypes
import os
import platform
import warnings

import numpy as np

# cores as nngraph counts them: CPU affinity cut to the cgroup's CPU quota
from nngraph.backends.cpu.scheduler import usable_cores

# Instruction-set flags worth recording, by prefix: Linux's (/proc/cpuinfo: avx512_vnni,
# amx_tile) and LLVM's (avx512vnni, amx-tile) spellings both start so.
_ISA_PREFIXES = ("sse4", "avx", "fma", "f16c", "amx")
_ENV_PREFIXES = ("OMP_", "KMP_", "GOMP_", "MKL_", "OPENBLAS_", "NUMBA_", "NNGRAPH_")
# mkl_cbwr.h: the code path MKL's reproducibility mode would pick (mkl_cbwr_get_auto_branch).
_MKL_BRANCHES = {1: "BRANCH_OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3",
                 7: "SSE4_1", 8: "SSE4_2", 9: "AVX", 10: "AVX2", 11: "AVX512_MIC",
                 12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1"}


def _isa(flag: str) -> bool:
    return flag.startswith(_ISA_PREFIXES)


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages: above ~0.5 on the 2-core machine something
    else shared the cores while measuring."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def cpu() -> dict:
    """Model, vendor, family/model/stepping and the SIMD flags of the first CPU."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]
        info = {k.strip(): v.strip() for k, _, v in
                (line.partition(":") for line in first.splitlines())}
    except OSError:
        pass
    return {"model_name": info.get("model name") or platform.processor() or None,
            "vendor": info.get("vendor_id"), "family": info.get("cpu family"),
            "model": info.get("model"), "stepping": info.get("stepping"),
            "flags": sorted(f for f in info.get("flags", "").split() if _isa(f)),
            "cpu_count": os.cpu_count(), "usable_cores": usable_cores()}


def numba_target() -> dict:
    """The CPU numba compiles nngraph's kernels for (NUMBA_CPU_NAME, or the host's) and
    the features LLVM sees on the host."""
    import llvmlite.binding as llvm
    import numba
    from numba.core import config
    host = llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features()
    return {"version": numba.__version__, "cpu_name": config.CPU_NAME or host,
            "host_cpu_name": host, "cpu_features": config.CPU_FEATURES,
            "host_features": sorted(k for k, on in features.items() if on and _isa(k))}


class _MKLVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("update", ctypes.c_int),
                ("status", ctypes.c_char_p), ("build", ctypes.c_char_p),
                ("processor", ctypes.c_char_p), ("platform", ctypes.c_char_p)]


def nngraph_blas() -> dict:
    """The BLAS nngraph's products call and, when it is MKL, its version and the processors
    MKL took this CPU for: 'Intel(R) Advanced Vector Extensions 2 (Intel(R) AVX2) enabled
    processors' on an Intel CPU, the generic 'Intel(R) Architecture processors' on AMD."""
    from nngraph.kernels.cpu import blas
    out = {"provider": blas.PROVIDER}
    lib = blas.load_library("libmkl_rt.so*", ["libmkl_rt.so.2", "libmkl_rt.so"],
                            loaded_only=True)
    if lib is not None:
        try:
            buf = ctypes.create_string_buffer(256)
            lib.MKL_Get_Version_String(buf, len(buf))
            out["mkl_version"] = buf.value.decode(errors="replace").strip()
            version = _MKLVersion()
            lib.MKL_Get_Version(ctypes.byref(version))
            out["mkl_release"] = f"{version.major}.{version.minor}.{version.update}"
            out["mkl_processor"] = (version.processor or b"").decode(errors="replace")
            branch = lib.mkl_cbwr_get_auto_branch()
            out["mkl_cbwr_auto_branch"] = _MKL_BRANCHES.get(branch, str(branch))
        except AttributeError:
            pass
    return out


def torch_config() -> dict:
    """PyTorch's BLAS, CPU capability and threading, from torch.__config__."""
    import torch
    lines = [line.strip() for line in torch.__config__.show().splitlines()]
    settings = {}
    for line in lines:
        if line.startswith("- Build settings:"):
            for item in line.split(":", 1)[1].split(", "):
                key, _, value = item.strip().partition("=")
                settings[key] = value
    wanted = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP")
    parallel = torch.__config__.parallel_info().splitlines()
    return {"version": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "libraries": [line[2:] for line in lines if line.startswith("- ") and
                          ("Math Kernel" in line or "MKL-DNN" in line or "OpenMP" in line)],
            **{k.lower(): settings[k] for k in wanted if k in settings},
            "parallel_backend": next((line.split(":", 1)[1].strip() for line in parallel
                                      if line.startswith("ATen parallel backend")), None),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads()}


def threadpools() -> dict:
    """Every BLAS and OpenMP runtime loaded in this process (numpy's, nngraph's MKL and
    its OpenMP, PyTorch's), by threadpoolctl when it is installed."""
    try:
        import threadpoolctl
    except ImportError:
        return {"pools": None, "note": "threadpoolctl is not installed"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pools = threadpoolctl.threadpool_info()
    return {"pools": pools, "warnings": [str(w.message) for w in caught]}


def describe() -> dict:
    import nngraph
    import onnx
    import onnxruntime
    try:
        numpy_blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        numpy_blas = {k: numpy_blas.get(k) for k in ("name", "version")}
    except (AttributeError, KeyError, TypeError):
        numpy_blas = None
    return {"cpu": cpu(), "load_average": {"start": load_average()},
            "system": platform.platform(), "python": platform.python_version(),
            "nngraph": nngraph.__version__, "nngraph_blas": nngraph_blas(),
            "numba": numba_target(), "numpy": {"version": np.__version__, "blas": numpy_blas},
            "torch": torch_config(),
            "onnxruntime": {"version": onnxruntime.__version__, "onnx": onnx.__version__},
            "threadpools": threadpools(),
            "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENV_PREFIXES)}}


def summary(m: dict, load: int = 0) -> str:
    """One line for the log: 'AMD EPYC (AuthenticAMD 25/1), 2 of 2 cores usable, avx avx2
    f16c fma; numba znver3; nngraph BLAS mkl 2026.0.2 for Intel(R) Architecture processors;
    torch AVX2 on OpenMP; load 0.12; 2 busy processes'."""
    c, b = m["cpu"], m["nngraph_blas"]
    isa = " ".join(f for f in c["flags"] if not f.startswith("sse")) or "no AVX"
    blas = b["provider"] + (f" {b['mkl_release']} for {b['mkl_processor']}"
                            if b.get("mkl_processor") else "")
    start = m["load_average"]["start"]
    return (f"{c['model_name']} ({c['vendor']} {c['family']}/{c['model']}), "
            f"{c['usable_cores']} of {c['cpu_count']} cores usable, {isa}; "
            f"numba {m['numba']['cpu_name']}; nngraph BLAS {blas}; "
            f"torch {m['torch']['cpu_capability']} on {m['torch']['parallel_backend']}; "
            f"load {start[0] if start else '?'}; "
            f"{load} busy process{'' if load == 1 else 'es'}")
