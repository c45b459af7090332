"""Result records: metric values with errors and provenance, written as strict JSON.

JSON has no NaN or infinity: a value that is not a finite number (for example FPND's error,
which has no estimate) is written as ``null``, so that any strict parser reads the record.
Reading maps ``null`` back to NaN for a metric's ``value`` and ``error`` (always numbers in
memory) and to None elsewhere; records written before, with bare ``NaN``, are read too.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..errors import FormatError

__all__ = ["MetricValue", "EvaluationResult", "RECORD_VERSION"]

RECORD_VERSION = 1


@dataclass(frozen=True)
class MetricValue:
    """One metric: value and error in raw units, the scale papers print, and what it means.

    ``value`` and ``error`` are unscaled; ``scale`` is the factor tables multiply by (e.g. 1e3
    for W1M), so that a printed "W1M x 10^3" means what the papers mean.  ``truth`` and
    ``truth_error`` hold the truth-vs-truth value (two disjoint real samples of the same size);
    ``p_value``, ``z`` and ``equivalent_size`` where the evaluation computed them.
    """

    name: str
    value: float
    error: float
    definition: str
    scale: float = 1.0
    truth: float | None = None
    truth_error: float | None = None
    better: str = "lower"  # "lower", "higher" or "closer to 0.5"
    p_value: float | None = None  # against reference-vs-reference resamples (``--null K``; significance.py)
    z: float | None = None  # (badness - null mean) / null sd, positive: worse than the null's mean
    equivalent_size: str | None = None  # reference sample size that scores as badly (``--equivalent-stats``)

    def scaled(self, x: float | None) -> float | None:
        return None if x is None else x * self.scale


@dataclass
class EvaluationResult:
    """Everything ``pcbench evaluate`` measured about one sample file."""

    kind: str
    model: str
    metrics: dict[str, MetricValue]
    provenance: dict[str, Any] = field(default_factory=dict)
    record_version: int = RECORD_VERSION
    per_bin: dict[str, Any] | None = None  # the suite per bin of a condition (``--per-bin``; breakdown.py)

    def to_json(self) -> str:
        """Strict JSON (non-finite numbers as ``null``): same record, same bytes.

        Keys are sorted except the metrics, which keep the suite's order (the order of a table's
        columns whether it is built from records on disk or in memory)."""
        data = _sorted_keys(finite_or_null(asdict(self)))
        data["metrics"] = {name: _sorted_keys(finite_or_null(asdict(m))) for name, m in self.metrics.items()}
        return json.dumps(data, indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> EvaluationResult:
        """Parse a record; raises ValueError (bad JSON), KeyError or TypeError (not a record)."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            raise KeyError("metrics")
        metrics = {}
        for k, v in data.pop("metrics").items():
            v = dict(v)
            for num in ("value", "error"):  # numbers in memory: null is NaN
                v[num] = math.nan if v.get(num) is None else v[num]
            metrics[k] = MetricValue(**v)
        return cls(metrics=metrics, **data)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the record atomically; returns its path."""
        atomic_write_text(path, self.to_json())
        return Path(path)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> EvaluationResult:
        """Read a record; a file that is not one (cut off, not JSON, fields missing) is a one-line FormatError."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FormatError(f"{path}: cannot read the result record: {exc}") from exc
        try:
            return cls.from_json(text)
        except json.JSONDecodeError as exc:
            # a string that never closes runs to the end of the file: cut off there too
            ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
            cut = " (cut off: the file ends early)" if ends_early else ""
            raise FormatError(f"{path}: not a complete JSON result record{cut}: {exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}; re-run `pcbench evaluate` to remake it") from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise FormatError(f"{path}: not a pcbench result record (expected the fields kind, model, metrics, "
                              f"provenance as `pcbench evaluate` writes them): {exc}") from exc


def _sorted_keys(obj: Any) -> Any:
    """``obj`` with the keys of every mapping sorted, recursively."""
    if isinstance(obj, dict):
        return {k: _sorted_keys(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted_keys(v) for v in obj]
    return obj


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj
