"""The suite per bin of a condition: showers per bin of incident energy, jets per bin of their
pT or mass (``binning.py``).

Each bin keeps the protocol's rows whose objects fall in it (generated, reference and truth rows
each binned by their own value) and runs the whole suite on them, model row and truth row, so a
bin's values compare like the whole sample's (at the bin's sizes: size-dependent metrics are
larger in small bins; the truth row shows by how much).  A bin with fewer than 10 objects in a
sample is skipped and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import IncompatibleError
from ..metrics.response import bin_index
from .binning import BinSpec
from .result import MetricValue

__all__ = ["per_bin", "MIN_PER_BIN"]

MIN_PER_BIN = 10


def _bin_record(metrics: dict[str, MetricValue]) -> dict[str, dict[str, float | None]]:
    return {k: {"value": m.value, "error": m.error, "truth": m.truth, "truth_error": m.truth_error}
            for k, m in metrics.items()}


def per_bin(spec: BinSpec, edges: np.ndarray, values: dict[str, np.ndarray],
            run: Callable[[dict[str, np.ndarray]], dict[str, MetricValue]],
            step: Callable[[str], None]) -> dict[str, Any]:
    """Run ``run`` on each bin's positions in the samples.

    ``values``: the binned variable of each sample's protocol rows ({"gen": (n_gen,), "ref":
    (n_ref,), "truth": (n_truth,)}); ``run`` gets, per sample, the positions (into those rows) of
    the bin's objects and returns the suite's metrics.  Returns the record's ``per_bin`` entry.
    """
    idx = {k: bin_index(v, edges) for k, v in values.items()}
    bins = []
    for b in range(len(edges) - 1):
        pos = {k: np.flatnonzero(i == b) for k, i in idx.items()}
        entry: dict[str, Any] = {"low": float(edges[b]), "high": float(edges[b + 1]),
                                 **{f"n_{k}": int(len(p)) for k, p in pos.items()}}
        few = [k for k, p in pos.items() if len(p) < MIN_PER_BIN]
        if few:
            entry["skipped"] = f"fewer than {MIN_PER_BIN} objects in the {', '.join(few)} sample(s)"
        else:
            step(f"bin {b + 1} of {len(edges) - 1}: [{edges[b]:.4g}, {edges[b + 1]:.4g}] {spec.unit}")
            try:
                entry["metrics"] = _bin_record(run(pos))
            except IncompatibleError as exc:
                entry["skipped"] = str(exc)
        bins.append(entry)
    return {"variable": spec.variable, "unit": spec.unit, "binning": spec.describe(),
            "edges": [float(e) for e in edges], "bins": bins,
            "outside": {k: int(np.sum(i < 0)) for k, i in idx.items()}}
