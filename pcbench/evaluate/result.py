"""Result records: metric values with errors and provenance, written as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write_text

__all__ = ["MetricValue", "EvaluationResult", "RECORD_VERSION"]

RECORD_VERSION = 1


@dataclass(frozen=True)
class MetricValue:
    """One metric: value and error in raw units, the scale papers print, and what it means.

    ``value`` and ``error`` are unscaled; ``scale`` is the factor tables multiply by (e.g. 1e3
    for W1M), so that a printed "W1M x 10^3" means what the papers mean.  ``truth`` and
    ``truth_error`` hold the truth-vs-truth value (two disjoint real samples of the same size).
    """

    name: str
    value: float
    error: float
    definition: str
    scale: float = 1.0
    truth: float | None = None
    truth_error: float | None = None
    better: str = "lower"  # "lower", "higher" or "closer to 0.5"

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

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=1, sort_keys=True, allow_nan=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> EvaluationResult:
        data = json.loads(text)
        metrics = {k: MetricValue(**v) for k, v in data.pop("metrics").items()}
        return cls(metrics=metrics, **data)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the record atomically; returns its path."""
        atomic_write_text(path, self.to_json())
        return Path(path)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> EvaluationResult:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
