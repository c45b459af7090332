"""Published numbers, shipped with pcbench and always labelled as published: the CaloChallenge
write-up's tables (arXiv:2410.21611, one row per submission, GEANT4 first), the CaloClouds II
paper's ILD table (arXiv:2309.05704) and, for JetNet30 g, q, t (``published_jets.csv``), the MP-GAN
paper's results table (arXiv:2106.11535, 13 generator + discriminator rows per class) and the
evaluation paper's gluon FPD/KPD rows (arXiv:2211.10295).  ``pcbench published NAME`` prints them."""

from __future__ import annotations

import ast
import csv
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = ["PUBLISHED", "PROTOCOLS", "PublishedTable", "published_protocol", "published_table"]

#: name -> (file, source, note on units)
PUBLISHED = {
    "calochallenge-1-photons": ("calochallenge_ds1_photons.csv", "CaloChallenge write-up, arXiv:2410.21611"),
    "calochallenge-1-pions": ("calochallenge_ds1_pions.csv", "CaloChallenge write-up, arXiv:2410.21611"),
    "calochallenge-2": ("calochallenge_ds2.csv", "CaloChallenge write-up, arXiv:2410.21611"),
    "calochallenge-3": ("calochallenge_ds3.csv", "CaloChallenge write-up, arXiv:2410.21611"),
    "ild-photons": ("caloclouds2_ild.csv", "CaloClouds II paper, arXiv:2309.05704 (W1 as printed there, 40,000 showers)"),
    **{f"jetnet30:{t}": ("../published_jets.csv", "MP-GAN paper arXiv:2106.11535; evaluation paper arXiv:2211.10295")
       for t in "gqt"},
}

#: the protocol each source states (as printed in the papers and their code), by the start of its name
PROTOCOLS = {
    "MP-GAN paper": "JetNet30 split 70/30 (train/evaluation); W1 between 10,000 real and 10,000 generated jets, "
                    "5 batches; FPND 50,000 jets; COV/MMD 100 real vs 100 generated, 10 batches",
    "evaluation paper": "JetNet30 gluon, the first 50,000 jets of the evaluation split (70/30); W1 5 batches of "
                        "50,000; FPD extrapolated to N -> inf and KPD on EFPs; its Truth row from a jet-distortion study",
    "CaloChallenge": "the whole generated file against the whole Geant4 test file; the GEANT4 row: the training "
                     "file against the test file",
    "CaloClouds II": "40,000 showers per sample; W1 on 5 consecutive batches of 10,000, each observable normalised "
                     "by the real sample's maximum; the Geant4 row: Geant4 against Geant4",
}


def published_protocol(source: str) -> str:
    """The protocol the source of a published row states (or 'not stated')."""
    return next((text for start, text in PROTOCOLS.items() if source.startswith(start)), "not stated")


#: JetNet metrics in the printed units: (csv metric, header)
_JET_COLUMNS = (("w1m", "W1M x1e3"), ("w1p", "W1P x1e3"), ("w1efp", "W1EFP x1e5"), ("fpnd", "FPND"),
                ("cov", "COV"), ("mmd", "MMD"), ("fpd", "FPD x1e3"), ("kpd", "KPD x1e3"),
                ("w1p_ptrel", "W1 ptrel x1e3"))

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
    if name.startswith("jetnet30:"):
        return _jet_table(name, source)
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


def _jet_table(name: str, source: str) -> PublishedTable:
    """The published JetNet rows of benchmark ``name`` (``jetnet30:g`` ...), one per model and paper."""
    from .tables import read_published

    rows = read_published().get(name, [])
    cols = [(m, h) for m, h in _JET_COLUMNS if any(m in r.values for r in rows)]
    out = [[r.model, r.source] + [_fmt(*r.values[m]) if m in r.values else "-" for m, _ in cols] for r in rows]
    return PublishedTable(name, source, ["model", "source"] + [h for _, h in cols], out)


#: CaloChallenge columns as pcbench metrics: metric -> (column, its std column, factor to the printed scale)
_CALO_METRICS = {"fpd": ("FPD * 1e3", "FPD * 1e3 std", 1.0), "kpd": ("KPD * 1e3", "KPD * 1e3 std", 1.0),
                 "auc_low": ("binary cls low", "binary cls low std", 1.0),
                 "auc_high": ("binary cls high", "binary cls high std", 1.0),
                 "precision": ("precision", None, 1.0), "recall": ("recall", None, 1.0),
                 "density": ("density", None, 1.0), "coverage": ("coverage", None, 1.0),
                 "sep_e_ratio": ("sep E total", None, 1e3), "sep_e_layer": ("sep E layer", None, 1e3),
                 "sep_ec_eta": ("sep EC eta", None, 1e3), "sep_ec_phi": ("sep EC phi", None, 1e3),
                 "sep_ec_r": ("sep EC r", None, 1e3), "sep_sparsity": ("sep sparsity", None, 1e3),
                 "sep_cell": ("sep cell", None, 1e3)}
_ILD_METRICS = {**{f"w1_{m}": (f"w1_{m}", f"w1_{m}_std", 1.0) for m in
                   ("n_hits", "e_ratio", "e_cell", "e_long", "e_radial", "cog_x", "cog_y", "cog_z")},
                "auc_high": ("auc_high", "auc_high_std", 1.0)}


def published_rows() -> dict[str, list]:
    """Every published row pcbench ships, by benchmark, as table rows (``tables.PublishedRow``):
    values in the printed scale of pcbench's column of the same metric (CaloChallenge FPD and
    KPD x10^3, separation powers x10^3, CaloClouds II W1 x10^3; per-layer lists as their mean,
    as pcbench's per-layer families).  A leaderboard shows them only in a table on that very
    data set (never on parameterised or simulated data: another benchmark name)."""
    from .tables import PublishedRow, read_published

    out = read_published()
    for name, (fname, source) in PUBLISHED.items():
        if name.startswith("jetnet30:"):
            continue
        text = (resources.files("pcbench.leaderboard") / "published" / fname).read_text(encoding="utf-8")
        columns, label = (_ILD_METRICS, "simulator") if name == "ild-photons" else (_CALO_METRICS, "submission name")
        rows = []
        for r in csv.DictReader(io.StringIO(text)):
            values = {}
            for metric, (col, std, factor) in columns.items():
                v = _number(r.get(col, ""), factor)
                if v is not None:
                    values[metric] = (v, _number(r.get(std, ""), factor) if std else None)
            rows.append(PublishedRow(r[label], source, values, published_protocol(source)))
        out[name] = rows
    return out
