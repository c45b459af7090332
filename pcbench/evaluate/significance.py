"""Null distributions and equivalent reference statistics of a suite's metrics.

``null_rows`` makes K re-draws of the protocol's rows with other seeds (new halves A_k, B_k of
one reference file; or new truth subsamples of the disjoint truth sample against the same
reference): each is a reference-vs-reference comparison at the model row's sample sizes, so the
truth rows of these draws are the null distribution of every metric (``metrics/null.py``).
``size_rows`` makes the truth row at smaller truth-sample sizes (the equivalent reference
statistics).  The suites compute these rows with ``model=False`` and keep them in the truth
cache, so a later model against the same reference pays nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..metrics.null import equivalent_size, null_test
from .protocol import Rows, half_rows, split_rows
from .result import MetricValue

__all__ = ["null_rows", "size_rows", "apply_significance", "run_significance", "SIZE_FRACTIONS"]

SIZE_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)  # truth-sample sizes of the equivalent statistics, with 1
MIN_ROWS = 10


def null_rows(rows: Rows, n_gen: int, n_ref: int, n_truth: int, seed: int, k: int, objects: str) -> list[Rows]:
    """K re-draws of ``rows`` (seeds ``seed + 1 ... seed + K``), in the same protocol."""
    if rows.mode == "halves":
        return [half_rows(n_gen, n_ref, seed + 1 + i, MIN_ROWS, objects) for i in range(k)]
    return [split_rows(n_gen, n_ref, n_truth, seed + 1 + i, rows.truth_from, MIN_ROWS, objects) for i in range(k)]


def size_rows(rows: Rows, seed: int) -> list[tuple[int, Rows]]:
    """The truth row's rows cut to ``SIZE_FRACTIONS`` of their number (a seeded subsample, at
    least 10), each with its size."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(rows.truth)
    out = []
    for f in SIZE_FRACTIONS:
        m = int(round(len(rows.truth) * f))
        if m >= MIN_ROWS:
            out.append((m, dataclasses.replace(rows, truth=np.sort(perm[:m]))))
    return out


def apply_significance(metrics: dict[str, MetricValue], null_runs: list[dict[str, MetricValue]],
                       size_runs: list[tuple[int, dict[str, MetricValue]]], n_truth: int) -> tuple[
                           dict[str, MetricValue], dict[str, dict]]:
    """The metrics with their p-value and z (from ``null_runs``' truth values) and equivalent
    reference size (from ``size_runs`` and the truth row at ``n_truth``), and the details a
    record keeps (the null values, the sizes and values)."""
    out, details = {}, {}
    for name, m in metrics.items():
        extra: dict = {}
        changes: dict = {}
        if null_runs:
            nulls = np.array([r[name].truth if name in r and r[name].truth is not None else np.nan for r in null_runs])
            t = null_test(m.value, nulls, m.better)
            changes.update(p_value=t.p_value, z=t.z)
            extra["null"] = {"values": [float(v) for v in nulls], "mean": t.null_mean, "sd": t.null_sd, "k": t.k}
        if size_runs:
            sizes = [s for s, _ in size_runs] + [n_truth]
            values = [r[name].truth if name in r and r[name].truth is not None else np.nan for _, r in size_runs]
            values.append(np.nan if m.truth is None else m.truth)
            eq = equivalent_size(m.value, np.array(sizes, float), np.array(values, float), m.better)
            changes["equivalent_size"] = None if eq is None else eq.text()
            extra["equivalent"] = {"sizes": sizes, "values": [float(v) for v in values],
                                   "n": None if eq is None else eq.n, "bound": None if eq is None else eq.bound}
        out[name] = dataclasses.replace(m, **changes)
        if extra:
            details[name] = extra
    return out, details


def run_significance(metrics: dict[str, MetricValue], rows: Rows, n_gen: int, n_ref: int, n_truth: int, seed: int,
                     null: int, equivalent: bool, objects: str, truth_row: Callable[[Rows], dict[str, MetricValue]],
                     step: Callable[[str], None]) -> tuple[dict[str, MetricValue], dict[str, dict]]:
    """Compute the null draws and the smaller truth rows with ``truth_row`` (a suite run with
    ``model=False``) and apply them to ``metrics``."""
    null_runs = []
    for i, r in enumerate(null_rows(rows, n_gen, n_ref, n_truth, seed, null, objects) if null else []):
        step(f"null distribution: draw {i + 1} of {null}")
        null_runs.append(truth_row(r))
    size_runs = []
    for m, r in size_rows(rows, seed) if equivalent else []:
        step(f"equivalent statistics: the truth row at {m:,} {objects}")
        size_runs.append((m, truth_row(r)))
    return apply_significance(metrics, null_runs, size_runs, len(rows.truth))
