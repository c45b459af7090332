"""Energy response and resolution of showers per bin of incident energy, and the fit of the
resolution's stochastic and constant terms.

For showers of incident energy E_inc and visible (deposited, above threshold) energy E_vis, the
response R = E_vis / E_inc.  In each bin of E_inc:

* the response: the mean <R>, error sd / sqrt(n);
* the width: the standard deviation sd(R), error sd / sqrt(2 (n - 1)) (Gaussian approximation);
* the relative resolution sd(R) / <R>, errors propagated.

The resolution of a calorimeter follows sigma / E = a / sqrt(E [GeV]) (+) b (stochastic and
constant terms, added in quadrature); ``fit_resolution`` fits a, b >= 0 to the bins' relative
resolutions at their mean E_inc (least squares weighted by the errors).  As metrics, the mean
over bins of the relative differences of the model's response and resolution to the reference's
(``response_difference``); both are 0 for identical samples, positive with finite samples (the
truth row shows the floor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["bin_index", "BinResponse", "ResolutionFit", "ResponseComparison", "response_per_bin", "fit_resolution",
           "response_difference"]

MIN_PER_BIN = 2  # fewest showers of each sample a bin needs to have a width


@dataclass(frozen=True)
class BinResponse:
    """One bin: edges and mean incident energy [MeV], showers, <R>, sd(R), sd / <R>, with errors."""

    low: float
    high: float
    e_mean: float
    n: float
    mean: float
    mean_error: float
    width: float
    width_error: float
    resolution: float
    resolution_error: float


@dataclass(frozen=True)
class ResolutionFit:
    """sigma / E = a / sqrt(E [GeV]) (+) b: the stochastic term ``a`` [sqrt(GeV)], the constant
    term ``b`` (both fractions), their errors, chi^2 and degrees of freedom."""

    a: float
    a_error: float
    b: float
    b_error: float
    chi2: float
    ndf: int


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value (-1: outside every bin); bins [lo, hi), the last [lo, hi]."""
    v = np.asarray(values, np.float64)
    idx = np.searchsorted(edges, v, side="right") - 1
    idx[v == edges[-1]] = len(edges) - 2
    idx[(idx < 0) | (idx > len(edges) - 2) | ~np.isfinite(v)] = -1
    return idx


def _weighted_bins(ratio: np.ndarray, e_inc: np.ndarray, edges: np.ndarray,
                   w: np.ndarray) -> list[BinResponse | None]:
    out: list[BinResponse | None] = []
    idx = bin_index(e_inc, edges)
    for b in range(len(edges) - 1):
        sel = idx == b
        wb, rb = w[sel], ratio[sel]
        n = float(wb.sum())
        if n < MIN_PER_BIN or np.count_nonzero(wb) < MIN_PER_BIN:
            out.append(None)
            continue
        mean = float(wb @ rb / n)
        sd = float(np.sqrt(max(wb @ (rb - mean) ** 2 / (n - 1), 0.0)))
        mean_err, sd_err = sd / np.sqrt(n), sd / np.sqrt(2 * (n - 1))
        res = sd / mean if mean != 0 else float("nan")
        res_err = abs(res) * float(np.hypot(sd_err / sd if sd > 0 else 0.0, mean_err / mean if mean else 0.0))
        out.append(BinResponse(float(edges[b]), float(edges[b + 1]), float(wb @ e_inc[sel] / n), n, mean, mean_err,
                               sd, sd_err, res, res_err))
    return out


def response_per_bin(ratio: np.ndarray, e_inc: np.ndarray, edges: np.ndarray) -> list[BinResponse | None]:
    """Response, width and relative resolution of R = E_vis / E_inc (N,) in the bins ``edges``
    [MeV] of E_inc (N,) (bins [lo, hi), the last [lo, hi]); None for a bin with < 2 showers."""
    ratio, e_inc = np.asarray(ratio, np.float64), np.asarray(e_inc, np.float64)
    keep = np.isfinite(ratio) & np.isfinite(e_inc)
    return _weighted_bins(ratio[keep], e_inc[keep], np.asarray(edges, np.float64), np.ones(int(keep.sum())))


def fit_resolution(e_gev: np.ndarray, resolution: np.ndarray, error: np.ndarray) -> ResolutionFit | None:
    """Fit sigma / E = sqrt(a^2 / E + b^2) (a, b >= 0) to relative resolutions at energies
    ``e_gev`` [GeV] with errors; None with fewer than 2 points."""
    from scipy.optimize import curve_fit

    e, r, s = (np.asarray(v, np.float64) for v in (e_gev, resolution, error))
    ok = np.isfinite(e) & np.isfinite(r) & np.isfinite(s) & (s > 0) & (e > 0)
    e, r, s = e[ok], r[ok], s[ok]
    if len(e) < 2:
        return None

    def model(x: np.ndarray, a: float, b: float) -> np.ndarray:
        return np.sqrt(a * a / x + b * b)

    # start from the linear fit of r^2 = a^2 / E + b^2
    coef = np.linalg.lstsq(np.column_stack([1 / e, np.ones_like(e)]), r * r, rcond=None)[0]
    p0 = np.sqrt(np.clip(coef, 1e-12, None))
    (a, b), cov = curve_fit(model, e, r, p0=p0, sigma=s, absolute_sigma=True, bounds=([0.0, 0.0], [np.inf, np.inf]))
    err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    chi2 = float(np.sum(((r - model(e, a, b)) / s) ** 2))
    return ResolutionFit(float(a), float(err[0]), float(b), float(err[1]), chi2, len(e) - 2)


@dataclass(frozen=True)
class ResponseComparison:
    """The model's and the reference's per-bin response, their resolution fits, and the two
    metrics (mean relative differences over the bins both fill) with bootstrap errors."""

    response_diff: float
    response_diff_error: float
    resolution_diff: float
    resolution_diff_error: float
    real: list[BinResponse | None]
    gen: list[BinResponse | None]
    real_fit: ResolutionFit | None
    gen_fit: ResolutionFit | None

    def details(self) -> dict[str, Any]:
        """JSON-ready: per-bin tables and fits."""
        rows = lambda bins: [None if b is None else asdict(b) for b in bins]  # noqa: E731
        return {"reference": rows(self.real), "model": rows(self.gen),
                "reference_fit": None if self.real_fit is None else asdict(self.real_fit),
                "model_fit": None if self.gen_fit is None else asdict(self.gen_fit)}


def _diffs(real: list[BinResponse | None], gen: list[BinResponse | None]) -> tuple[float, float]:
    pairs = [(r, g) for r, g in zip(real, gen) if r is not None and g is not None]
    if not pairs:
        return float("nan"), float("nan")
    resp = np.mean([abs(g.mean - r.mean) / abs(r.mean) for r, g in pairs])
    reso = np.mean([abs(g.resolution - r.resolution) / abs(r.resolution) for r, g in pairs])
    return float(resp), float(reso)


def _fit_of(bins: list[BinResponse | None]) -> ResolutionFit | None:
    have = [b for b in bins if b is not None]
    return fit_resolution(np.array([b.e_mean for b in have]) / 1e3, np.array([b.resolution for b in have]),
                          np.array([b.resolution_error for b in have]))


def response_difference(real_ratio: np.ndarray, real_e: np.ndarray, gen_ratio: np.ndarray, gen_e: np.ndarray,
                        edges: np.ndarray, n_boot: int = 10, seed: int = 42) -> ResponseComparison:
    """Compare response and resolution per bin of E_inc [MeV] (``edges``) of the generated and
    the reference showers (R = E_vis / E_inc and E_inc of each); errors from ``n_boot``
    bootstrap resamplings of both samples (``default_rng(seed)``)."""
    edges = np.asarray(edges, np.float64)
    parts = []
    for ratio, e in ((real_ratio, real_e), (gen_ratio, gen_e)):
        ratio, e = np.asarray(ratio, np.float64), np.asarray(e, np.float64)
        keep = np.isfinite(ratio) & np.isfinite(e)
        parts.append((ratio[keep], e[keep]))
    (rr, re), (gr, ge) = parts
    real, gen = (_weighted_bins(r, e, edges, np.ones(len(r))) for r, e in parts)
    resp, reso = _diffs(real, gen)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        wr = rng.multinomial(len(rr), np.full(len(rr), 1.0 / len(rr))).astype(np.float64)
        wg = rng.multinomial(len(gr), np.full(len(gr), 1.0 / len(gr))).astype(np.float64)
        boots.append(_diffs(_weighted_bins(rr, re, edges, wr), _weighted_bins(gr, ge, edges, wg)))
    b = np.asarray(boots, np.float64) if boots else np.full((1, 2), np.nan)
    return ResponseComparison(resp, float(np.nanstd(b[:, 0])), reso, float(np.nanstd(b[:, 1])), real, gen,
                              _fit_of(real), _fit_of(gen))
