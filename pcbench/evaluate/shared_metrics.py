"""Metrics that several suites compute the same way: the shower response and resolution per
incident-energy bin, and the correlation difference of a set of observables.

Each adds its (value, error) pairs to a suite's output and returns the details a record keeps
(per-bin tables, fits, the difference matrix) for reports and figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics.correlation import correlation_difference
from ..metrics.response import response_difference
from .binning import bin_edges, parse_energy_bins

__all__ = ["energy_edges", "shower_response", "correlations", "model_values"]

Values = dict[str, tuple[float, float]]


def energy_edges(reference_e_inc: np.ndarray, spec: str) -> np.ndarray:
    """The incident-energy bin edges [MeV] of ``--energy-bins`` ``spec`` for this reference."""
    return bin_edges(reference_e_inc, parse_energy_bins(spec))


def shower_response(real_ratio: np.ndarray, real_e: np.ndarray, gen_ratio: np.ndarray, gen_e: np.ndarray,
                    edges: np.ndarray, out: dict[str, tuple[float, float]], n_boot: int, seed: int) -> dict[str, Any]:
    """``response_diff`` and ``resolution_diff`` into ``out``; returns the bins, the per-bin
    tables and the resolution fits of both samples."""
    c = response_difference(real_ratio, real_e, gen_ratio, gen_e, edges, n_boot, seed)
    out["response_diff"] = (c.response_diff, c.response_diff_error)
    out["resolution_diff"] = (c.resolution_diff, c.resolution_diff_error)
    return {"edges_mev": [float(e) for e in edges], **c.details()}


def correlations(real: np.ndarray, gen: np.ndarray, names: tuple[str, ...], out: dict[str, tuple[float, float]],
                 n_boot: int, seed: int) -> dict[str, Any]:
    """``corr_max`` and ``corr_mean`` of the observables (columns of ``real``, ``gen``) into
    ``out``; returns their names and the difference matrix C_gen - C_ref."""
    c = correlation_difference(real, gen, names, n_boot, seed)
    out["corr_max"] = (c.max_abs, c.max_abs_error)
    out["corr_mean"] = (c.mean_abs, c.mean_abs_error)
    return {"names": list(c.names), "difference": np.round(c.difference, 6).tolist()}


def model_values(values: Values | None, truth: Values) -> Values:
    """The model row's values, or NaN for every truth-row metric where the model was not run
    (``model=False``: a suite asked for its truth row alone)."""
    return values if values is not None else {k: (float("nan"), float("nan")) for k in truth}
