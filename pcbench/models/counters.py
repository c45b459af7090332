"""What a generator costs besides time: its parameters (all, trainable, read while sampling),
the FLOPs of a call (torch's flop counter) and the peak memory of a call (CPU resident set or
CUDA allocations); used by ``cost.py`` (``docs/cost.md``)."""

from __future__ import annotations

import ctypes
import gc
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["count_parameters", "count_flops", "PeakMemory"]


# -- parameters and FLOPs -----------------------------------------------------------------------

def count_parameters(module: torch.nn.Module) -> dict[str, Any]:
    """Parameter counts (elements): ``total``, ``trainable`` (``requires_grad``), ``by_part``
    (each top-level sub-network), and ``buffer_elements`` (fitted state such as a baseline's pool)."""
    params = list(module.parameters())
    return {"total": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad),
            "by_part": {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()},
            "buffer_elements": sum(b.numel() for b in module.buffers())}


def _tensor_use_mode() -> Any:
    """A dispatch mode that records the storages every operator receives (None if torch lacks it)."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except ImportError:  # pragma: no cover - very old torch
        return None

    class _StorageUse(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.storages: set[int] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            def note(a: Any) -> None:
                if isinstance(a, torch.Tensor):
                    try:
                        self.storages.add(a.untyped_storage().data_ptr())
                    except (RuntimeError, NotImplementedError):  # tensors without storage
                        pass
                elif isinstance(a, (list, tuple)):
                    for b in a:
                        note(b)

            note(args)
            note(list((kwargs or {}).values()))
            return func(*args, **(kwargs or {}))

    return _StorageUse()


def count_flops(fn: Callable[[], Any], module: torch.nn.Module | None = None
                ) -> tuple[int, dict[str, int], int | None, Any]:
    """(total FLOPs of ``fn()`` as FlopCounterMode counts them, FLOPs by operator, parameters of
    ``module`` read by it (elements; None without ``module``), ``fn``'s result).

    The module's parameters are set to ``requires_grad=False`` for the call (FlopCounterMode's
    module tracker cannot follow parametrised layers, e.g. weight norm, under inference mode) and
    restored after."""
    from torch.utils.flop_counter import FlopCounterMode

    params = list(module.parameters()) if module is not None else []
    flags = [p.requires_grad for p in params]
    use = _tensor_use_mode() if module is not None else None
    try:
        for p in params:
            p.requires_grad_(False)
        with FlopCounterMode(display=False) as counter:
            if use is not None:
                with use:
                    out = fn()
            else:
                out = fn()
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    used = None
    if use is not None:
        used = sum(p.numel() for p in params if p.untyped_storage().data_ptr() in use.storages)
    return int(counter.get_total_flops()), dict(sorted(by_op.items())), used, out


# -- peak memory ----------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATM = Path("/proc/self/statm")


def _status_kb(key: str) -> int | None:
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_bytes() -> int | None:
    try:
        return int(_STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - psutil missing or failing
        return None


def _trim() -> None:
    """Collect garbage and hand freed heap memory back to the OS (glibc), so that RSS is live memory."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Context manager: peak memory [MB] of the code inside it, and how it was measured.

    After the block: ``peak_mb`` (CUDA: the peak of allocated tensor memory; CPU: the peak RSS of
    the whole process), ``increase_mb`` (that peak minus the value just before the block), both
    None where unmeasurable; ``method`` says which method was used."""

    def __init__(self, device: str | torch.device = "cpu", interval_s: float = 0.001) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.peak_mb: float | None = None
        self.increase_mb: float | None = None
        self.method = self.method_for(self.device)
        self._before = 0
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def method_for(device: str | torch.device) -> str:
        """The method used on ``device`` on this machine, in words."""
        if torch.device(device).type == "cuda":
            return "torch.cuda.max_memory_allocated after reset_peak_memory_stats (GPU tensors, weights included)"
        if _status_kb("VmHWM") is not None and _reset_hwm():
            return ("peak resident set size of the process (VmHWM of /proc/self/status, reset through "
                    "/proc/self/clear_refs), after gc.collect() and malloc_trim(0)")
        if _rss_bytes() is not None:
            return ("resident set size of the process sampled every 1 ms by a thread, after gc.collect() and "
                    "malloc_trim(0)")
        return "unavailable"

    def __enter__(self) -> PeakMemory:
        _trim()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._before = torch.cuda.memory_allocated(self.device)
        elif self.method.startswith("peak resident"):
            _reset_hwm()
            self._before = (_status_kb("VmRSS") or 0) * 1024
        elif self.method.startswith("resident"):
            self._before = self._peak = _rss_bytes() or 0
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, _rss_bytes() or 0)

    def __exit__(self, *exc: Any) -> None:
        peak: int | None = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.method.startswith("peak resident"):
            hwm = _status_kb("VmHWM")
            peak = None if hwm is None else hwm * 1024
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_bytes() or 0)
        if peak is not None:
            self.peak_mb = peak / 1e6
            self.increase_mb = max(peak - self._before, 0) / 1e6
