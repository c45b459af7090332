"""Bins of a condition (a shower's incident energy, a jet's pT or mass) for per-bin metrics.

``--energy-bins`` (showers, incident energy in MeV):

* ``auto``: the reference's discrete energies when it has at most 20 (CaloChallenge data set 1:
  powers of two from 256 MeV to 4 TeV), one bin around each (edges at the geometric midpoints),
  else 5 log-spaced bins from its smallest to its largest energy;
* ``N``: N log-spaced bins over the reference's range;
* ``E0,E1,...``: explicit edges [MeV], increasing.

``--jet-bins VARIABLE:SPEC`` (jets; VARIABLE ``pt`` [GeV] or ``mass`` [GeV], the jet's own):
``pt:N`` N bins of equal reference population (quantiles), ``pt:x0,x1,...`` explicit edges.

Bins are [lo, hi), the last [lo, hi]; objects outside every bin are left out of the per-bin runs
(the record counts them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..metrics.response import bin_index

__all__ = ["BinSpec", "parse_energy_bins", "parse_jet_bins", "bin_edges", "bin_index", "MAX_DISCRETE"]

MAX_DISCRETE = 20  # at most this many distinct reference energies are taken as discrete
DEFAULT_LOG_BINS = 5
DEFAULT_QUANTILE_BINS = 4
UNITS = {"incident_energy": "MeV", "pt": "GeV", "mass": "GeV"}


@dataclass(frozen=True)
class BinSpec:
    """What binning was asked for: the variable, ``auto`` / ``log`` / ``quantile`` / ``edges``,
    the number of bins or the edges."""

    variable: str
    kind: str
    n: int | None = None
    edges: tuple[float, ...] | None = None

    @property
    def unit(self) -> str:
        return UNITS[self.variable]

    def describe(self) -> str:
        what = {"incident_energy": "incident energy", "pt": "jet pT", "mass": "jet mass"}[self.variable]
        how = {"auto": "automatic bins", "log": f"{self.n} log-spaced bins", "quantile": f"{self.n} quantile bins",
               "edges": "explicit edges"}[self.kind]
        return f"{what} [{self.unit}], {how}"


def _numbers(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected a number of bins or comma-separated increasing edges") from None
    if len(values) < 2 or any(b <= a for a, b in zip(values, values[1:])) or not np.all(np.isfinite(values)):
        raise UsageError(f"{option} {text!r}: expected at least two finite, strictly increasing edges")
    return values


def _count(text: str, option: str) -> int | None:
    if text.isdigit():
        n = int(text)
        if n < 1:
            raise UsageError(f"{option} {text!r}: expected at least 1 bin")
        return n
    return None


def parse_energy_bins(text: str) -> BinSpec:
    """``--energy-bins``: ``auto``, a number of log-spaced bins, or edges in MeV."""
    text = text.strip()
    if text == "auto":
        return BinSpec("incident_energy", "auto")
    n = _count(text, "--energy-bins")
    if n is not None:
        return BinSpec("incident_energy", "log", n)
    edges = _numbers(text, "--energy-bins")
    if edges[0] <= 0:
        raise UsageError(f"--energy-bins {text!r}: incident energies are positive (MeV); the first edge is {edges[0]}")
    return BinSpec("incident_energy", "edges", edges=edges)


def parse_jet_bins(text: str) -> BinSpec:
    """``--jet-bins``: ``pt:N``, ``mass:N`` (quantile bins) or ``pt:x0,x1,...`` (edges in GeV)."""
    variable, sep, rest = text.strip().partition(":")
    if not sep or variable not in ("pt", "mass"):
        raise UsageError(f"--jet-bins {text!r}: expected pt:SPEC or mass:SPEC (SPEC a number of bins or edges in GeV)")
    if rest in ("", "auto"):
        return BinSpec(variable, "quantile", DEFAULT_QUANTILE_BINS)
    n = _count(rest, "--jet-bins")
    if n is not None:
        return BinSpec(variable, "quantile", n)
    return BinSpec(variable, "edges", edges=_numbers(rest, "--jet-bins"))


def bin_edges(reference: np.ndarray, spec: BinSpec) -> np.ndarray:
    """The edges for ``spec`` from the reference's values of the variable (n,)."""
    x = np.asarray(reference, np.float64)
    x = x[np.isfinite(x)]
    if spec.kind == "edges":
        return np.asarray(spec.edges, np.float64)
    if len(x) == 0:
        raise UsageError(f"cannot bin by {spec.describe()}: the reference has no finite value")
    lo, hi = float(x.min()), float(x.max())
    if spec.kind == "quantile":
        edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, spec.n + 1)))
        return edges if len(edges) > 1 else np.array([lo, lo + 1.0])
    if spec.kind == "auto":
        values = np.unique(x)
        if len(values) <= MAX_DISCRETE:
            if len(values) == 1:
                return np.array([values[0] / 2, values[0] * 2])
            mids = np.sqrt(values[1:] * values[:-1])
            return np.concatenate([[values[0] ** 2 / mids[0]], mids, [values[-1] ** 2 / mids[-1]]])
        n = DEFAULT_LOG_BINS
    else:
        n = spec.n
    if lo <= 0:
        raise UsageError(f"cannot make log-spaced bins of {spec.describe()}: the reference's smallest value is {lo}")
    return np.geomspace(lo, hi, n + 1) if hi > lo else np.array([lo / 2, lo * 2])
