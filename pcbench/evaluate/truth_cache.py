"""The truth row, computed once per reference and settings and kept on disk.

The truth row of a table (a disjoint real sample against the reference) is the same for every
model evaluated against that reference with the same settings, so ten models need not recompute
it.  A stored truth row is keyed by everything that determines its values: the checksums of the
reference and of the truth sample, the rows used, the suite's version and settings, pcbench's
version, and the checksum of the code that computes the values (``code_identity``: the metric
functions and the suites), so that a change of arithmetic, even one at rounding level, is never
answered from an entry the old code wrote; any change is a new key.  Entries are JSON files under ``<cache>/truth-rows/``, written
atomically (a killed run leaves no partial entry); an unreadable entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._io import atomic_write_text
from .result import finite_or_null

__all__ = ["TruthStore", "code_identity"]

_CODE_IDENTITY: str | None = None


def code_identity() -> str:
    """md5 of the source of ``pcbench/metrics`` and of the suites (``pcbench/evaluate/*.py``)."""
    global _CODE_IDENTITY
    if _CODE_IDENTITY is None:
        root = Path(__file__).resolve().parents[1]
        digest = hashlib.md5(usedforsecurity=False)
        for path in sorted([*(root / "metrics").glob("*.py"), *(root / "evaluate").glob("*.py")]):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        _CODE_IDENTITY = digest.hexdigest()
    return _CODE_IDENTITY

Values = dict[str, tuple[float, float]]


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


@dataclass
class TruthStore:
    """Truth rows on disk (``folder`` None: nothing stored, always computed).

    ``identity`` names the data: the reference's and the truth sample's checksums and splits.
    ``hits`` counts the rows served from disk in this process (tests and logs read it).
    """

    folder: Path | None
    identity: dict[str, Any] = field(default_factory=dict)
    hits: int = 0

    def key(self, settings: dict[str, Any]) -> str:
        text = json.dumps({"identity": self.identity, "settings": settings, "pcbench": __version__,
                           "code": code_identity()},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def get_or_compute(self, settings: dict[str, Any], compute: Callable[[], tuple[Values, dict[str, Any]]],
                       ) -> tuple[Values, dict[str, Any]]:
        """The truth row's ``({metric: (value, error)}, details)``: from disk, else computed and stored."""
        path = None if self.folder is None else self.folder / f"{self.key(settings)}.json"
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                values = {k: (float("nan") if v is None else v, float("nan") if e is None else e)
                          for k, (v, e) in data["values"].items()}
                self.hits += 1
                return values, data["details"]
            except (OSError, ValueError, KeyError, TypeError):
                pass  # unreadable: recompute and replace
        values, details = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            entry = {"identity": self.identity, "settings": settings, "pcbench": __version__, "code": code_identity(),
                     "values": {k: [_finite(float(v)), _finite(float(e))] for k, (v, e) in values.items()},
                     "details": finite_or_null(details)}
            atomic_write_text(path, json.dumps(entry, indent=1, sort_keys=True, default=str, allow_nan=False) + "\n")
        return values, details
