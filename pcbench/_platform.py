"""The platform fingerprint: everything that can change floating-point results of a seeded run.

Two runs with the same seeds give bit-identical numbers only on the same fingerprint: the same
CPU model and vector instruction sets (numpy's and torch's SIMD kernels, and OpenBLAS / MKL pick
their code paths from them), the same BLAS / OpenMP libraries and versions with the same thread
counts (a reduction split over another number of threads sums in another order), and the same
Python, numpy and torch.  ``pcbench leaderboard reproduce`` requires exact agreement only when
the whole fingerprint agrees, and agreement within errors otherwise.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Any

__all__ = ["platform_fingerprint", "fingerprint_differences", "machine", "load_average", "FP_CPU_FLAGS",
           "LOADED_FRACTION"]

#: CPU flags (as ``/proc/cpuinfo`` names them) that select other floating-point code paths
FP_CPU_FLAGS = re.compile(r"^(sse4_1|sse4_2|avx|avx2|fma|fma4|f16c|avx512.*|avx_vnni.*|amx.*)$")


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """(CPU model name, its floating-point-relevant flags) from the first processor in ``path``."""
    model, flags = "", []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = sorted(f for f in value.split() if FP_CPU_FLAGS.match(f))
        if model and flags:
            break
    return model or platform.processor() or platform.machine(), flags


def _numpy_simd() -> list[str]:
    """The SIMD extensions numpy's dispatcher uses on this machine (after ``NPY_DISABLE_CPU_FEATURES``)."""
    try:
        from numpy.core._multiarray_umath import __cpu_features__ as feats  # numpy 1.x
    except ImportError:  # pragma: no cover - numpy 2
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    return sorted(k for k, on in feats.items() if on and re.match(r"^(AVX|FMA|F16C)", k))


def _blas_libraries() -> list[dict[str, Any]]:
    """BLAS and OpenMP libraries loaded in this process (numpy's, torch's): API, version, kernels, threads."""
    import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS)
    import sklearn.utils  # noqa: F401  (loads scikit-learn's OpenMP)
    import torch  # noqa: F401  (loads torch's OpenMP)
    from threadpoolctl import threadpool_info

    # the libraries above are imported first so that the list does not depend on what ran before
    keys = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
    libs = [{k: lib.get(k) for k in keys} for lib in threadpool_info()]
    return sorted(libs, key=lambda lib: (str(lib["user_api"]), str(lib["prefix"]), str(lib["version"])))


def _torch_math() -> dict[str, Any]:
    """torch's CPU kernel level (``ATEN_CPU_CAPABILITY``), its BLAS / oneDNN versions and thread counts."""
    import torch  # noqa: F401

    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([^\s]+)", config)
    dnn = re.search(r"MKL-DNN (v[^\s]+)", config)
    return {"torch": torch.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_mkl": mkl.group(1) if mkl else None, "torch_mkldnn": dnn.group(1) if dnn else None,
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()}


def platform_fingerprint() -> dict[str, Any]:
    """What must agree for bit-identical reproduction (JSON-serialisable, deterministic order).

    Keys: ``machine``, ``cpu_model``, ``cpu_flags`` (the vector / FMA flags), ``python``,
    ``numpy``, ``numpy_simd``, ``blas`` (each loaded BLAS / OpenMP library: API, version,
    kernel architecture, threads), and torch's version, CPU capability, MKL / oneDNN versions and
    thread counts.
    """
    import numpy as np

    model, flags = _cpuinfo()
    return {"machine": platform.machine(), "cpu_model": model, "cpu_flags": flags,
            "python": platform.python_version(), "numpy": np.__version__, "numpy_simd": _numpy_simd(),
            "blas": _blas_libraries(), **_torch_math()}


#: a measurement is flagged as made on a loaded machine when the 1-minute load average just before
#: it exceeds this fraction of the cores (other work was competing for the CPU)
LOADED_FRACTION = 0.75


def load_average() -> dict[str, Any]:
    """The 1-, 5- and 15-minute load averages, the cores, and whether the machine counts as loaded."""
    import os

    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover - platforms without a load average
        return {"load_1min": None, "cpu_count": os.cpu_count(), "loaded": None}
    cores = os.cpu_count() or 1
    return {"load_1min": round(one, 2), "load_5min": round(five, 2), "load_15min": round(fifteen, 2),
            "cpu_count": cores, "loaded": one > LOADED_FRACTION * cores}


def machine(device: str = "cpu") -> dict[str, Any]:
    """The one description of the machine a number was measured on: the platform, the cores, the
    GPU if any, the device used, the load average at the time, and the fingerprint of everything
    that changes floating-point results (``platform_fingerprint``)."""
    import os

    import torch  # noqa: F401

    info: dict[str, Any] = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "device": device,
                            "torch_threads": torch.get_num_threads(), "load": load_average(),
                            "fingerprint": platform_fingerprint()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def fingerprint_differences(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """The keys on which two fingerprints differ (a missing fingerprint differs in everything)."""
    if not a or not b:
        return ["fingerprint missing"]
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
