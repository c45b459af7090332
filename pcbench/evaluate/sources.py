"""The incident-energy check that every shower suite makes first (the samples themselves stream
through ``data.sources.ShowerSource``)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import ks_2samp

from ..data.sources import ShowerSource
from ..errors import PcbenchError

__all__ = ["ShowerSource", "check_incident_energies"]  # ShowerSource: re-exported from data.sources

def check_incident_energies(gen: np.ndarray, ref: np.ndarray, what: str, p_min: float = 1e-3) -> dict[str, float]:
    """Refuse a sample whose incident energies do not follow the reference's.

    Histograms of shower observables mix all energies, so a different E_inc spectrum distorts
    every one of them.  A two-sample Kolmogorov-Smirnov test with p below ``p_min`` raises,
    naming both spectra; returns the test's statistic and p-value for the record.
    """
    with warnings.catch_warnings():  # tied energies (sampled at the reference's): scipy falls back to asymp
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        res = ks_2samp(gen, ref)
    if res.pvalue < p_min:
        q = (5, 50, 95)
        g, r = np.percentile(gen, q), np.percentile(ref, q)
        raise PcbenchError(
            f"{what}: the incident energies do not follow the reference's (Kolmogorov-Smirnov p = {res.pvalue:.2g} "
            f"< {p_min:g}; generated 5/50/95 % = {g[0]:.4g}/{g[1]:.4g}/{g[2]:.4g} MeV, reference "
            f"{r[0]:.4g}/{r[1]:.4g}/{r[2]:.4g} MeV). Shower histograms would be distorted: generate at the "
            "reference's incident energies (e.g. its incident_energies dataset), or pass --energy-check off.")
    return {"ks_statistic": float(res.statistic), "ks_pvalue": float(res.pvalue)}
