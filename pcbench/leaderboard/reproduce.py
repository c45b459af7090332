"""Re-run a committed table and compare: exact on the same platform, within errors otherwise."""

from __future__ import annotations

import csv
import math
import os
import tempfile
from pathlib import Path

from .._platform import fingerprint_differences
from ..evaluate.result import EvaluationResult
from .pipeline import load_config, run_pipeline

__all__ = ["compare_csv", "reproduce"]


def _read(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["model"]: row for row in csv.DictReader(fh)}


def compare_csv(committed: Path, new: Path, exact: bool, n_sigma: float = 2.0) -> list[str]:
    """Differences between two table CSVs, one line each (empty: they agree).

    ``exact``: values must agree to 1e-12 relative (bit-identical runs print identical reprs);
    otherwise |new - committed| <= n_sigma * max(error of either), or 1e-6 relative where no error.
    """
    old, cur = _read(committed), _read(new)
    diffs = [f"row {m!r}: in the committed table, not reproduced" for m in old if m not in cur]
    diffs += [f"row {m!r}: reproduced, not in the committed table" for m in cur if m not in old]
    for model in (m for m in old if m in cur):
        for col, a in old[model].items():
            if col in ("model", "row") or col.endswith("_err"):
                continue
            b = cur[model].get(col)
            if b is None:
                diffs.append(f"{model} / {col}: column missing in the reproduction")
                continue
            if a == b:
                continue
            if a == "" or b == "":
                diffs.append(f"{model} / {col}: committed {a or 'empty'}, reproduced {b or 'empty'}")
                continue
            va, vb = float(a), float(b)
            if math.isnan(va) and math.isnan(vb):
                continue
            errs = [float(x) for x in (old[model].get(f"{col}_err", ""), cur[model].get(f"{col}_err", "")) if x]
            err = max((e for e in errs if not math.isnan(e)), default=0.0)
            tol = 1e-12 * abs(va) if exact else (n_sigma * err if err > 0 else 1e-6 * abs(va))
            if not abs(va - vb) <= tol:
                rule = "exact (same platform)" if exact else f"{n_sigma} x error {err:.3g}"
                diffs.append(f"{model} / {col}: committed {va!r}, reproduced {vb!r} (tolerance: {rule})")
    return diffs


def _made_on(records: list[Path]) -> dict | None:
    """The platform fingerprint all committed records share (None if any lacks it or they differ)."""
    prints = [EvaluationResult.read(r).provenance.get("platform") for r in records]
    return prints[0] if all(p == prints[0] for p in prints) else None


def reproduce(config_path: str | os.PathLike[str], work_dir: str | os.PathLike[str] | None = None,
              progress: bool = False, log=print) -> list[str]:
    """Re-run the config beside its committed tables; return every difference (empty: reproduced).

    The committed directory is the config's; its ``records/*.json`` hold the platform fingerprint
    the tables were made on (:func:`pcbench._platform.platform_fingerprint`).  Agreement must be
    exact only when the reproduction's fingerprint (taken, like the committed one, while the
    config's thread limits apply) is the same in every key; otherwise within
    ``tolerance.n_sigma`` (default 2) errors.
    """
    config_path = Path(config_path)
    cfg = load_config(config_path)
    committed = config_path.parent
    records = sorted((committed / "records").glob("*.json"))
    if not records:
        return [f"{committed}: no committed records (records/*.json) to compare with; run `pcbench leaderboard run` first"]
    made_on = _made_on(records)
    n_sigma = cfg.tolerance.n_sigma
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(work_dir) if work_dir else Path(tmp) / "work"
        out = Path(tmp) / "tables"
        fresh = run_pipeline(cfg, work, out, progress=progress, log=log)
        differ = sorted({k for r in fresh for k in fingerprint_differences(made_on, r.provenance.get("platform"))})
        exact = not differ
        diffs = []
        for table in sorted(committed.glob("*.csv")):
            new = out / table.name
            if not new.exists():
                diffs.append(f"{table.name}: not produced by the reproduction")
                continue
            diffs += [f"{table.name}: {d}" for d in compare_csv(table, new, exact, n_sigma)]
        log("compared on the same platform (exact)" if exact else
            f"compared on another platform (within {n_sigma} errors; differs in {', '.join(differ)})")
    return diffs
