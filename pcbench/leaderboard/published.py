"""Published numbers, shipped with pcbench and always labelled as published: the CaloChallenge
write-up's tables (arXiv:2410.21611, one row per submission, GEANT4 first) and the CaloClouds II
paper's ILD table (arXiv:2309.05704).  ``pcbench published NAME`` prints them."""

from __future__ import annotations

import ast
import csv
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = ["PUBLISHED", "PublishedTable", "published_table"]

#: name -> (file, source, note on units)
PUBLISHED = {
    "calochallenge-1-photons": ("calochallenge_ds1_photons.csv", "CaloChallenge write-up, arXiv:2410.21611"),
    "calochallenge-1-pions": ("calochallenge_ds1_pions.csv", "CaloChallenge write-up, arXiv:2410.21611"),
    "calochallenge-2": ("calochallenge_ds2.csv", "CaloChallenge write-up, arXiv:2410.21611"),
    "calochallenge-3": ("calochallenge_ds3.csv", "CaloChallenge write-up, arXiv:2410.21611"),
    "ild-photons": ("caloclouds2_ild.csv", "CaloClouds II paper, arXiv:2309.05704 (W1 as printed there, 40,000 showers)"),
}

#: CaloChallenge columns shown by default: (header, column, its std column)
_CALO_COLUMNS = (("FPD x1e3", "FPD * 1e3", "FPD * 1e3 std"), ("KPD x1e3", "KPD * 1e3", "KPD * 1e3 std"),
                 ("AUC low", "binary cls low", "binary cls low std"), ("AUC high", "binary cls high", "binary cls high std"),
                 ("precision", "precision", None), ("recall", "recall", None), ("density", "density", None),
                 ("coverage", "coverage", None), ("sep E_tot/E_inc x1e3", "sep E total", None),
                 ("ms/shower CPU b=1", "time CPU 1", "time CPU 1 std"), ("ms/shower GPU b=100", "time GPU 100", "time GPU 100 std"))


@dataclass(frozen=True)
class PublishedTable:
    """Rows of published numbers: ``header`` and ``rows`` of printable cells, and the source."""

    name: str
    source: str
    header: list[str]
    rows: list[list[str]]


def _number(text: str, scale: float = 1.0) -> float | None:
    """A cell as a number: plain, or the mean of a (nested) list such as the per-run lists."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text) * scale
    except ValueError:
        pass
    try:
        values = np.asarray(ast.literal_eval(text.replace(" ", ",").replace(",,", ",").replace("[,", "[")), float)
    except (ValueError, SyntaxError):
        return None
    return float(values.mean()) * scale


def _fmt(v: float | None, e: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if e is None else f"{v:.4g} ± {e:.2g}"


def published_table(name: str) -> PublishedTable:
    """The published table of a benchmark (see ``PUBLISHED``)."""
    if name not in PUBLISHED:
        raise KeyError(f"no published table for {name!r}; known: {', '.join(PUBLISHED)}")
    fname, source = PUBLISHED[name]
    text = (resources.files("pcbench.leaderboard") / "published" / fname).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    if name == "ild-photons":
        metrics = ("n_hits", "e_ratio", "e_cell", "e_long", "e_radial", "cog_x", "cog_y", "cog_z")
        header = ["simulator"] + [f"W1 {m} x1e3" for m in metrics] + ["AUC high", "ms/shower CPU 1 thread", "ms/shower A100 b=64"]
        out = [[r["simulator"]] + [_fmt(_number(r[f"w1_{m}"]), _number(r[f"w1_{m}_std"])) for m in metrics]
               + [_fmt(_number(r["auc_high"]), _number(r["auc_high_std"])),
                  _fmt(_number(r["ms_per_shower_cpu_1thread_batch1"]), None), _fmt(_number(r["ms_per_shower_a100_batch64"]), None)]
               for r in rows]
        return PublishedTable(name, source, header, out)
    header = ["submission"] + [h for h, _, _ in _CALO_COLUMNS]
    out = []
    for r in rows:
        cells = [r["submission name"]]
        for h, col, std in _CALO_COLUMNS:
            scale = 1e3 if h.startswith("sep") else 1.0
            cells.append(_fmt(_number(r.get(col, ""), scale), _number(r.get(std, ""), scale) if std else None))
        out.append(cells)
    return PublishedTable(name, source, header, out)
