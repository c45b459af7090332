"""Matplotlib without a display, atomic PNG files, and the generated-vs-reference figure with a
ratio panel that every comparison plot of pcbench uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_path

__all__ = ["pyplot", "save_png", "ratio_axes", "legend_above", "ratio_points", "finish_ratio", "RATIO_RANGE"]


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


#: the ratio panel's y range; points beyond it are drawn as arrows at its edge
RATIO_RANGE = (0.5, 1.5)


def legend_above(ax, note: str = "") -> None:
    """The legend (and an optional note, e.g. the metric's value) above the axes, outside the
    data area, so that it never covers a histogram."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.01, 1.0, 0.1), mode="expand", ncol=2,
              frameon=False, fontsize=8, borderaxespad=0.0)
    if note:
        ax.set_title(note, fontsize=8, pad=18, loc="left")


def ratio_points(rax, x: np.ndarray, ratio: np.ndarray, err: np.ndarray, color: str = "C0") -> int:
    """Ratio points with error bars; a finite point outside ``RATIO_RANGE`` becomes a red arrow at
    the panel's edge (pointing out), so that no point silently leaves the picture.  Returns how
    many were drawn as arrows."""
    lo, hi = RATIO_RANGE
    x, ratio, err = (np.asarray(a, float) for a in (x, ratio, err))
    ok = np.isfinite(ratio)
    inside = ok & (ratio >= lo) & (ratio <= hi)
    rax.errorbar(x[inside], ratio[inside], yerr=err[inside], fmt="o", ms=2, color=color, lw=0.8)
    above, below = ok & (ratio > hi), ok & (ratio < lo)
    pad = 0.04 * (hi - lo)
    rax.plot(x[above], np.full(above.sum(), hi - pad), "^", color="red", ms=4, clip_on=False)
    rax.plot(x[below], np.full(below.sum(), lo + pad), "v", color="red", ms=4, clip_on=False)
    return int(above.sum() + below.sum())


def finish_ratio(fig, rax, xlabel: str) -> None:
    """The ratio panel's line at 1, its range and labels; a tight layout."""
    rax.axhline(1, color="grey", lw=0.8)
    rax.set_ylim(*RATIO_RANGE)
    rax.set_ylabel("gen / ref")
    rax.set_xlabel(xlabel)
    fig.tight_layout()
