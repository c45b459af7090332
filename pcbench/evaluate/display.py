"""How pcbench prints a metric: a header that says the quantity, one scale per column, value ±
error rounded to the error, and "< bound" for a distance consistent with zero.

Used by the terminal table of ``pcbench evaluate``, the HTML report and the leaderboard tables, so
that a number reads the same everywhere:

* **Header**: the quantity in words and its unit or definition (``LABELS``), then the scale,
  e.g. ``W1 of jet m/pT (x10^3)``.
* **Scale**: one power of ten per column.  The metric's customary scale (the papers': 10^3 for
  W1M) is kept when the column's median |value| prints between 0.1 and 1000 with it; otherwise
  no scale if that does, else the power that brings the median into [1, 1000).  (The median,
  not the largest: one wild row prints as a large number instead of pushing every other row
  to many zeros.)
* **Value ± error**: the error to two significant digits, the value to the same decimal place,
  in fixed notation (never an exponent in a cell).
* **Consistent with zero**: a distance (``better == "lower"``: 0 means identical) whose error
  reaches its value, or whose estimate is below zero (unbiased KPD, the classifier JSD estimate),
  prints as ``< bound`` with bound = max(value, 0) + error: what the data allow, not a
  meaningless signed number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["LABELS", "ERRORS", "label", "column_scale", "scale_text", "header", "fmt_number", "fmt_flops", "counted", "fmt_value", "error_definition",
           "consistent_with_zero"]

#: metric name -> the quantity in words, with its unit or definition (values are dimensionless
#: unless a unit is named)
LABELS: dict[str, str] = {
    # jets (JetNet)
    "w1m": "W1 of jet m/pT",
    "w1p": "W1 of particle (eta, phi, pT/pT_jet), mean",
    "w1efp": "W1 of 5 EFPs (n=4, d=4), mean",
    "fpd": "FPD (Frechet distance of features, N->inf)",
    "kpd": "KPD (kernel distance of features)",
    "cov": "COV (fraction of real jets matched, EMD)",
    "mmd": "MMD (EMD to nearest, pT/pT_jet units)",
    "fpnd": "FPND to real JetNet30 (not the reference)",
    "w1_tau21": "W1 of tau21",
    "w1_tau32": "W1 of tau32",
    "kl_mass": "KL of jet m/pT (50 bins)",
    "kl_ptconst": "KL of particle pT/pT_jet (50 bins)",
    "kl_tau21": "KL of tau21 (50 bins)",
    "kl_tau32": "KL of tau32 (50 bins)",
    "auc_hl": "AUC, boosted trees on jet observables",
    "auc_pl": "AUC, Deep Sets on particles",
    # several suites (response per incident-energy bin; correlations of observables)
    "response_diff": "response <E_vis/E_inc>, mean rel. difference over E_inc bins",
    "resolution_diff": "resolution sd/mean of E_vis/E_inc, mean rel. difference over bins",
    "corr_max": "Pearson correlations, largest |difference|",
    "corr_mean": "Pearson correlations, mean |difference|",
    # CaloChallenge
    "sep_e_ratio": "sep. power of E_vis/E_inc",
    "sep_e_layer": "sep. power of E_layer, mean over layers",
    "sep_ec_eta": "sep. power of centre in eta, mean",
    "sep_ec_phi": "sep. power of centre in phi, mean",
    "sep_width_eta": "sep. power of width in eta, mean",
    "sep_width_phi": "sep. power of width in phi, mean",
    "sep_ec_r": "sep. power of centre in r, mean",
    "sep_width_r": "sep. power of width in r, mean",
    "sep_sparsity": "sep. power of sparsity, mean",
    "sep_cell": "sep. power of voxel energies",
    "auc_low": "DNN AUC on voxels",
    "jsd_low": "DNN JSD on voxels",
    "auc_high": "DNN AUC on shower observables",
    "jsd_high": "DNN JSD on shower observables",
    "auc_cnn": "CNN (ResNet) AUC on voxel images",
    "jsd_cnn": "CNN (ResNet) JSD on voxel images",
    "precision": "precision (k=5 NN)",
    "recall": "recall (k=5 NN)",
    "density": "density (k=5 NN; 1 = identical)",
    "coverage": "coverage (k=5 NN)",
    # ILD / CaloClouds (W1 of observables normalised by the reference maximum)
    "w1_n_hits": "W1 of N_hits (normalised)",
    "w1_e_ratio": "W1 of E_vis/E_inc (normalised)",
    "w1_e_cell": "W1 of cell energies (normalised)",
    "w1_e_long": "W1 of longitudinal profile, mean (normalised)",
    "w1_e_radial": "W1 of radial profile, mean (normalised)",
    "w1_cog_x": "W1 of centre of gravity x (normalised)",
    "w1_cog_y": "W1 of centre of gravity y, depth (normalised)",
    "w1_cog_z": "W1 of centre of gravity z (normalised)",
}


def label(name: str) -> str:
    """The quantity a metric measures, in words (the metric's name where none is registered)."""
    return LABELS.get(name, name)


def _finite(values: Iterable[float | None]) -> list[float]:
    return [abs(v) for v in values if v is not None and math.isfinite(v)]


def column_scale(values: Iterable[float | None], customary: float = 1.0) -> float:
    """The factor to print a column with, chosen on its median |value| (so that one wild row, e.g.
    an untrained model, does not push every other row to many zeros): ``customary`` if the median
    then lies in [0.1, 1000), else 1 if it does, else the power of ten that brings it into [1, 1000)."""
    vals = sorted(v for v in _finite(values) if v > 0)
    if not vals:
        return customary
    mid = vals[len(vals) // 2]  # the upper median
    if 0.1 <= mid * customary < 1000:
        return customary
    if 0.1 <= mid < 1000:
        return 1.0
    exp = -math.floor(math.log10(mid)) if mid < 1 else -(math.floor(math.log10(mid)) - 2)
    return 10.0 ** exp


def scale_text(scale: float) -> str:
    """``x10^3`` for 1e3, ``x10^-2`` for 1e-2, empty for 1."""
    if scale == 1:
        return ""
    return f"x10^{round(math.log10(scale))}"


def header(name: str, scale: float) -> str:
    """A column header: the quantity and the scale, e.g. ``W1 of jet m/pT (x10^3)``."""
    s = scale_text(scale)
    return f"{label(name)} ({s})" if s else label(name)


def _decimals(x: float, digits: int) -> int:
    """Decimal places that show ``digits`` significant digits of ``x`` (at least 0)."""
    if x == 0 or not math.isfinite(x):
        return 0
    return max(0, digits - 1 - math.floor(math.log10(abs(x))))


#: values this large print as "m x 10^n" (a 20-digit integer is not readable; no "e" notation)
_HUGE = 1e9


def fmt_number(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits in fixed notation, or as ``m x 10^n`` from 1e9 up."""
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if abs(x) >= _HUGE:
        n = math.floor(math.log10(abs(x)))
        return f"{fmt_number(x / 10 ** n, digits)} x 10^{n}"
    return f"{x:.{_decimals(x, digits)}f}"


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless n is 1: ``1 thread``, ``2 threads``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def fmt_flops(flops: float) -> str:
    """A FLOP count with its SI prefix to 3 significant digits: ``30.7 kFLOP``, ``27.5 GFLOP``."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(flops) >= scale:
            return f"{fmt_number(flops / scale, 3)} {prefix}FLOP"
    return f"{fmt_number(flops, 3)} FLOP"


def consistent_with_zero(value: float, error: float | None, better: str) -> bool:
    """A distance (0 = identical) whose estimate is below zero or within its error of zero."""
    if better != "lower" or not math.isfinite(value):
        return False
    return value < 0 or (error is not None and math.isfinite(error) and error >= value)


#: errors below this fraction of the value are float rounding, printed as 0
_ROUNDING = 1e-10


def fmt_value(value: float | None, error: float | None, scale: float = 1.0, better: str = "") -> str:
    """``value ± error`` (scaled; error to 2 significant digits, the value to the same place),
    ``< bound`` for a distance consistent with zero, ``-`` for no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    v = value * scale
    e = None if error is None or not math.isfinite(error) else error * scale
    if consistent_with_zero(v, e, better):
        return f"< {fmt_number(max(v, 0.0) + (e or 0.0), 2)}"
    if e is None:
        return fmt_number(v, 4)
    if e <= abs(v) * _ROUNDING:  # 0, or float rounding of a saturated value (S = 1 - 2e-16 over bootstraps)
        return f"{fmt_number(v, 4)} ± 0"
    if max(abs(v), e) >= _HUGE:  # both in units of 10^n of the larger
        n = math.floor(math.log10(max(abs(v), e)))
        return f"({fmt_value(v / 10 ** n, e / 10 ** n)}) x 10^{n}"
    d = 1 - math.floor(math.log10(abs(e)))  # the place of the error's second significant digit
    if d < 0:  # errors of 100 and more: both rounded to that place, printed as integers
        return f"{round(v, d):.0f} ± {round(e, d):.0f}"
    return f"{v:.{d}f} ± {e:.{d}f}"


#: what the "± error" of each metric is (its suite's error estimate), for table footers
ERRORS: dict[str, str] = {
    "w1m": "std over the W1 batches", "w1p": "batch stds of the 3 features added in quadrature",
    "w1efp": "batch stds of the 5 EFPs added in quadrature", "w1_tau21": "std over the W1 batches",
    "w1_tau32": "std over the W1 batches",
    "fpd": "error of the 1/N extrapolation fit (jetnet fpd)", "kpd": "std over the KPD batches",
    "cov": "std over the COV/MMD batches", "mmd": "std over the COV/MMD batches",
    "fpnd": "none (FPND defines no error)",
    "kl_mass": "std over bootstraps", "kl_ptconst": "std over bootstraps", "kl_tau21": "std over bootstraps",
    "kl_tau32": "std over bootstraps", "auc_hl": "std over the k folds", "auc_pl": "std over the k folds",
    "auc_low": "std over bootstraps of the validation set", "jsd_low": "std over bootstraps",
    "auc_high": "std over bootstraps of the validation set", "jsd_high": "std over bootstraps",
    "auc_cnn": "std over bootstraps of the validation set", "jsd_cnn": "std over bootstraps",
    "precision": "binomial, sqrt(f (1 - f) / n)", "recall": "binomial, sqrt(f (1 - f) / n)",
    "density": "standard error of the mean", "coverage": "binomial, sqrt(f (1 - f) / n)",
    "response_diff": "std over bootstraps of both samples", "resolution_diff": "std over bootstraps of both samples",
    "corr_max": "std over bootstraps of both samples", "corr_mean": "std over bootstraps of both samples",
}


def error_definition(name: str) -> str:
    """What a metric's error is (W1 tables of the ILD suite: std over batches)."""
    if name.startswith("sep_"):
        return "std over bootstraps"
    if name.startswith("w1_") and name not in ERRORS:
        return "std over the W1 batches (profiles: stds in quadrature)"
    return ERRORS.get(name, "see the suite's docs")
