"""Matplotlib without a display, atomic PNG files, and the generated-vs-reference figure with a
ratio panel that every comparison plot of pcbench uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._io import atomic_path

__all__ = ["pyplot", "save_png", "ratio_axes", "finish_ratio"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: plots are optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, **savefig: Any) -> Path:
    """Write ``fig`` to ``path`` atomically (110 dpi) and close it."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", **{"dpi": 110, **savefig})
    pyplot().close(fig)
    return path


def ratio_axes():
    """(figure, main axes, ratio axes below, sharing x)."""
    fig, (ax, rax) = pyplot().subplots(2, 1, figsize=(5, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    return fig, ax, rax


def finish_ratio(fig, rax, xlabel: str) -> None:
    """The ratio panel's line at 1, its 0.5-1.5 range and labels; a tight layout."""
    rax.axhline(1, color="grey", lw=0.8)
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("gen / ref")
    rax.set_xlabel(xlabel)
    fig.tight_layout()
