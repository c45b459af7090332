"""How far from truth is a metric value: its p-value against reference-vs-reference resamples,
per-observable Kolmogorov-Smirnov tests, and the equivalent reference statistics.

A two-sample metric is never exactly 0 (or 0.5, or 1) for finite samples.  Whether a model's
value is "consistent with truth" is a test: the null distribution is the same metric between
two samples of the reference itself at the same sample sizes (K seeded resamples); the p-value
is the fraction of null values at least as bad as the model's,

    p = (1 + #{k : bad(null_k) >= bad(observed)}) / (K + 1),

with ``bad`` the distance from perfect in the metric's direction (lower: v; higher: -v; closer
to c: |v - c|), and z = (bad(observed) - mean bad(null)) / sd bad(null).  The equivalent
reference statistics (as in the CMS HGCal challenge's evaluation) is the size n_eq of a reference
sample that scores as badly against the reference as the model does: the metric of reference
subsamples at sizes n_1 < ... < n_J, interpolated in log-log; "at least n_J" when the model is
as good as the largest, "fewer than n_1" when it is worse than the smallest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["badness", "NullTest", "null_test", "EquivalentSize", "equivalent_size", "ks_tests"]


def badness(value: float | np.ndarray, better: str) -> float | np.ndarray:
    """Distance from a perfect value in the metric's direction ("lower", "higher", "closer to c")."""
    v = np.asarray(value, np.float64)
    if better == "lower":
        return v
    if better == "higher":
        return -v
    if better.startswith("closer to "):
        return np.abs(v - float(better.removeprefix("closer to ")))
    raise ValueError(f"unknown direction {better!r}: expected lower, higher or 'closer to C'")


@dataclass(frozen=True)
class NullTest:
    """The observed value's p-value and z against K null values, and the null's mean and sd."""

    p_value: float
    z: float
    null_mean: float
    null_sd: float
    k: int


def null_test(observed: float, null_values: np.ndarray, better: str) -> NullTest:
    """p-value and z of ``observed`` against the null values (K,) of the same metric."""
    nv = np.asarray(null_values, np.float64)
    nv = nv[np.isfinite(nv)]
    if len(nv) == 0 or not np.isfinite(observed):
        return NullTest(float("nan"), float("nan"), float("nan"), float("nan"), len(nv))
    b_obs, b_null = float(badness(observed, better)), badness(nv, better)
    p = (1 + int(np.sum(b_null >= b_obs))) / (len(nv) + 1)
    sd = float(b_null.std(ddof=1)) if len(nv) > 1 else float("nan")
    z = (b_obs - float(b_null.mean())) / sd if sd and np.isfinite(sd) else float("nan")
    return NullTest(float(p), float(z), float(nv.mean()), float(nv.std(ddof=1)) if len(nv) > 1 else float("nan"),
                    len(nv))


@dataclass(frozen=True)
class EquivalentSize:
    """n_eq and how it is bounded: ``=`` interpolated, ``>=`` (as good as the largest subsample),
    ``<`` (worse than the smallest)."""

    n: float
    bound: str

    def text(self) -> str:
        return {"=": f"{self.n:,.0f}", ">=": f">= {self.n:,.0f}", "<": f"< {self.n:,.0f}"}[self.bound]


def equivalent_size(observed: float, sizes: np.ndarray, values: np.ndarray, better: str) -> EquivalentSize | None:
    """The reference sample size at which the metric (``values`` at ``sizes``, reference
    subsamples against the reference) is as bad as ``observed``; None if not computable."""
    n, v = np.asarray(sizes, np.float64), badness(np.asarray(values, np.float64), better)
    ok = np.isfinite(v) & (n > 0)
    n, v = n[ok], v[ok]
    if len(n) == 0 or not np.isfinite(observed):
        return None
    order = np.argsort(n)
    n, v = n[order], np.minimum.accumulate(v[order])  # badness can only fall with more statistics
    b = float(badness(observed, better))
    if b <= v[-1]:
        return EquivalentSize(float(n[-1]), ">=")
    if b > v[0]:
        return EquivalentSize(float(n[0]), "<")
    j = int(np.searchsorted(-v, -b, side="left"))  # first size at which the badness is <= b
    j = min(max(j, 1), len(n) - 1)
    (n0, n1), (v0, v1) = n[j - 1:j + 1], v[j - 1:j + 1]
    if v0 <= 0 or v1 <= 0 or b <= 0 or v0 == v1:  # no log: linear in log n
        t = 0.0 if v0 == v1 else (v0 - b) / (v0 - v1)
    else:
        t = (np.log(v0) - np.log(b)) / (np.log(v0) - np.log(v1))
    return EquivalentSize(float(np.exp(np.log(n0) + t * (np.log(n1) - np.log(n0)))), "=")


def ks_tests(real: dict[str, np.ndarray], gen: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy, exact or asymptotic as it
    chooses) of each observable present in both (finite values only)."""
    import warnings

    from scipy.stats import ks_2samp

    out = {}
    for name in real:
        if name not in gen:
            continue
        a, b = np.asarray(real[name], np.float64).ravel(), np.asarray(gen[name], np.float64).ravel()
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) and len(b):
            with warnings.catch_warnings():  # ties (multiplicities): scipy falls back to the asymptotic p-value
                warnings.simplefilter("ignore", RuntimeWarning)
                r = ks_2samp(a, b)
            out[name] = (float(r.statistic), float(r.pvalue))
    return out
