"""Leaderboard tables: result records -> one Markdown and one CSV table per benchmark.

A benchmark is a reference data set and class (e.g. ``jetnet30-sim:g``).  Rows are models, the
truth-vs-truth row first, then pcbench's rows sorted by name, then published rows (labelled);
columns are metrics (value ± error in the papers' printed scale); the best computed value of each
column is marked in bold.  Records that are not comparable (another reference checksum, metric
suite version, profile or sample size) are refused with a message naming the field.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PcbenchError
from ..evaluate.result import EvaluationResult, MetricValue

__all__ = ["ComparabilityError", "PublishedRow", "Table", "build_tables", "read_published", "to_csv", "to_markdown",
           "table_stem", "COMPARABLE_FIELDS"]

#: provenance fields that must agree between the records of one table
COMPARABLE_FIELDS = ("reference", "reference_split", "reference_md5", "suite_version", "profile", "n_jets")


class ComparabilityError(PcbenchError):
    """Records that must not share a table; the message names the differing field."""


@dataclass(frozen=True)
class PublishedRow:
    """A row from a publication: values already in the printed scale, never mixed with computed ones."""

    model: str
    source: str
    values: dict[str, tuple[float, float | None]]


@dataclass
class Table:
    """One benchmark's table: the records of its models and any published rows."""

    benchmark: str
    records: list[EvaluationResult]
    published: list[PublishedRow] = field(default_factory=list)

    @property
    def metrics(self) -> list[str]:
        names: list[str] = []
        for r in self.records:
            names += [m for m in r.metrics if m not in names]
        return names

    def comparable_key(self, record: EvaluationResult) -> dict[str, Any]:
        prov = record.provenance
        key = {f: prov.get(f) for f in COMPARABLE_FIELDS if f != "profile"}
        key["profile"] = prov.get("config", {}).get("profile")
        return key

    def check(self) -> None:
        """Raise :class:`ComparabilityError` naming the first field that differs between records."""
        if not self.records:
            return
        first = self.comparable_key(self.records[0])
        for r in self.records[1:]:
            key = self.comparable_key(r)
            for f in first:
                if key[f] != first[f]:
                    raise ComparabilityError(
                        f"{self.benchmark}: record of {r.model!r} has {f} = {key[f]!r}, but {self.records[0].model!r} "
                        f"has {first[f]!r}; records computed with another {f} cannot share a table")
        names = [r.model for r in self.records]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ComparabilityError(f"{self.benchmark}: more than one record for model(s) {', '.join(sorted(dup))}")

    def _best(self) -> dict[str, float]:
        best: dict[str, float] = {}
        for name in self.metrics:
            vals = [(r.metrics[name].value, r.metrics[name]) for r in self.records if name in r.metrics]
            vals = [(v, m) for v, m in vals if v is not None and not math.isnan(v)]
            if not vals:
                continue
            rule = vals[0][1].better
            key = (lambda v: abs(v - 0.5)) if rule == "closer to 0.5" else (lambda v: -v) if rule == "higher" else (lambda v: v)
            best[name] = min((v for v, _ in vals), key=key)
        return best

    def rows(self) -> list[tuple[str, str, dict[str, MetricValue | tuple[float, float | None] | None]]]:
        """(model, kind of row, {metric: value}) in table order: truth, computed, published."""
        rows: list[tuple[str, str, dict]] = []
        if self.records:
            truth = {n: m for n, m in self.records[0].metrics.items()}
            rows.append(("truth vs truth", "truth", {n: MetricValue(n, m.truth, m.truth_error, m.definition, m.scale)
                                                     if m.truth is not None else None for n, m in truth.items()}))
        for r in sorted(self.records, key=lambda r: r.model):
            rows.append((r.model, "computed", dict(r.metrics)))
        for p in self.published:
            rows.append((f"{p.model} (published: {p.source})", "published", dict(p.values)))
        return rows


def _cell(v: MetricValue | tuple[float, float | None] | None, bold: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, MetricValue):
        value, err = v.scaled(v.value), v.scaled(v.error)
    else:
        value, err = v
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.3g}" if err is None or math.isnan(err) else f"{value:.3g} ± {err:.2g}"
    return f"**{text}**" if bold else text


def _scale_label(m: MetricValue) -> str:
    return m.name if m.scale == 1 else f"{m.name} x1e{round(math.log10(m.scale))}"


def to_markdown(table: Table, data_line: str | None = None) -> str:
    """The Markdown table with its provenance footer (deterministic: same records, same bytes).

    ``data_line``: a last footer line (the md5 of the CSV written with it, see ``store.py``)."""
    table.check()
    metrics = table.metrics
    first = {n: table.records[0].metrics[n] for n in metrics if n in table.records[0].metrics} if table.records else {}
    header = ["model"] + [_scale_label(first[n]) if n in first else n for n in metrics]
    lines = [f"# {table.benchmark}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = table._best()
    for model, kind, values in table.rows():
        cells = []
        for n in metrics:
            v = values.get(n)
            is_best = kind == "computed" and isinstance(v, MetricValue) and best.get(n) == v.value
            cells.append(_cell(v, is_best))
        lines.append("| " + " | ".join([model] + cells) + " |")
    lines += ["", "Bold: the best computed value of each column. Values are mean ± error in the printed scale "
              "(x1e3 means the value times 10^3); definitions in docs/metrics-jets.md. Published rows are "
              "quoted from their source, not recomputed."]
    if table.records:
        prov = table.records[0].provenance
        key = table.comparable_key(table.records[0])
        md5 = key["reference_md5"]
        md5_text = md5 if isinstance(md5, str) else ", ".join(f"{k} {v}" for k, v in sorted((md5 or {}).items()))
        lines += ["", "Provenance: reference "
                  f"`{key['reference']}` ({key['reference_split']} split, md5 {md5_text}); suite {key['suite_version']}, "
                  f"profile {key['profile']}, {key['n_jets']} jets per sample, seed {prov.get('seed')}, "
                  f"pcbench {prov.get('pcbench_version')}."]
        for r in sorted(table.records, key=lambda r: r.model):
            t = r.provenance.get("generation_time_per_object_s")
            timing = f", {t * 1e6:.3g} us per jet" if t else ""
            lines.append(f"- {r.model}: samples md5 {r.provenance.get('samples_md5')}{timing}")
    if data_line:
        lines += ["", data_line]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """The CSV table: full-precision unscaled values and errors (what ``reproduce`` compares)."""
    table.check()
    metrics = table.metrics
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "row"] + [c for n in metrics for c in (n, f"{n}_err")])
    for model, kind, values in table.rows():
        cells = []
        for n in metrics:
            v = values.get(n)
            if isinstance(v, MetricValue):  # an error of None (none estimated; null in JSON) is NaN, as in memory
                cells += [repr(v.value), repr(math.nan if v.error is None else v.error)]
            elif isinstance(v, tuple):
                cells += [repr(v[0]), "" if v[1] is None else repr(v[1])]
            else:
                cells += ["", ""]
        w.writerow([model, kind] + cells)
    return buf.getvalue()


def read_published(path: str | os.PathLike[str] | None = None) -> dict[str, list[PublishedRow]]:
    """Published rows by benchmark from a CSV (benchmark, model, source, metric, value, error),
    values in the papers' printed scale; default: the jet rows shipped with pcbench."""
    if path is None:
        from importlib import resources

        text = (resources.files("pcbench.leaderboard") / "published_jets.csv").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    rows: dict[tuple[str, str, str], dict[str, tuple[float, float | None]]] = {}
    for r in csv.DictReader(io.StringIO(text)):
        err = float(r["error"]) if r["error"] else None
        rows.setdefault((r["benchmark"], r["model"], r["source"]), {})[r["metric"]] = (float(r["value"]), err)
    out: dict[str, list[PublishedRow]] = {}
    for (bench, model, source), values in rows.items():
        out.setdefault(bench, []).append(PublishedRow(model, source, values))
    return out


def _benchmark_name(record: EvaluationResult) -> str:
    prov = record.provenance
    ref = str(prov.get("reference"))
    jt = prov.get("jet_type")
    return f"{ref}" if (":" in ref or not jt) else f"{ref}:{jt}"


def build_tables(records: Iterable[EvaluationResult], published: dict[str, list[PublishedRow]] | None = None) -> list[Table]:
    """Group records by benchmark and check each group's comparability."""
    groups: dict[str, list[EvaluationResult]] = {}
    for r in records:
        groups.setdefault(_benchmark_name(r), []).append(r)
    tables = [Table(b, rs, list((published or {}).get(b, []))) for b, rs in sorted(groups.items())]
    for t in tables:
        t.check()
    return tables


def table_stem(table: Table) -> str:
    """The file name of a table without suffix: its benchmark with other characters as ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in table.benchmark)

