"""The torch device a command runs on: checked once, with a one-line error naming what is missing."""

from __future__ import annotations

from .errors import UsageError

__all__ = ["check_device"]


def check_device(device: str) -> str:
    """``device`` if torch can use it here; else a one-line error saying what is missing."""
    import torch

    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise UsageError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
            raise UsageError(f"--device {device}: CUDA is not available here ({build}); use --device cpu, or install "
                             "a CUDA build of the same torch version (see the PyTorch installation guide) on a "
                             "machine with an NVIDIA GPU")
        if index and int(index) >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
