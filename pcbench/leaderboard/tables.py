"""Leaderboard tables: result records -> one Markdown and one CSV table per benchmark.

A benchmark is a reference data set and class (e.g. ``jetnet30-sim:g``).  Rows are models, the
truth-vs-truth row first, then pcbench's rows sorted by name, then published rows (labelled);
columns are metrics (value ± error, one scale per column, headers that name the quantity); the
best computed value of a column is bold only where it is better than the runner-up beyond the
errors.  Records that are not comparable (another reference checksum, metric suite version,
profile or protocol: samples and sizes) are refused with a message naming the field; the footer
states the protocol of the computed rows and that of each published row's paper.
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

from ..data.simulate.targets import JET_TARGETS
from ..errors import PcbenchError
from ..evaluate.display import column_scale, counted, error_definition, fmt_flops, fmt_number, fmt_value
from ..evaluate.display import header as display_header
from ..evaluate.protocol import protocol_text
from ..evaluate.result import EvaluationResult, MetricValue
from ..models.checkpoints import UNTRAINED_TEXT
from ..models.registry import GENERATORS
from .published import published_protocol

__all__ = ["ComparabilityError", "Layout", "PublishedRow", "Table", "build_tables", "layout", "read_published", "to_csv",
           "to_markdown", "table_stem", "COMPARABLE_FIELDS"]

#: provenance fields that must agree between the records of one table
#: (``protocol``: which samples at which sizes, ``evaluate/protocol.py``; records of different protocols never share one)
COMPARABLE_FIELDS = ("reference", "reference_split", "reference_md5", "suite_version", "profile", "protocol")


class ComparabilityError(PcbenchError):
    """Records that must not share a table; the message names the differing field."""


@dataclass(frozen=True)
class PublishedRow:
    """A row from a publication: values already in the printed scale, never mixed with computed ones."""

    model: str
    source: str
    values: dict[str, tuple[float, float | None]]
    protocol: str = "not stated"


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


def _raw(v: MetricValue | tuple[float, float | None] | None, customary: float) -> tuple[float | None, float | None]:
    """(value, error) unscaled: records hold them so; published rows hold the printed (customary) scale."""
    if v is None:
        return None, None
    if isinstance(v, MetricValue):
        return v.value, v.error
    value, err = v
    return value / customary, None if err is None else err / customary


def _rank_key(better: str):
    return (lambda v: abs(v - 0.5)) if better == "closer to 0.5" else (lambda v: -v) if better == "higher" else (lambda v: v)


def _bold_model(table: Table, name: str, ref_is_jetnet: bool) -> str | None:
    """The computed row that is best in column ``name`` beyond the errors, or None.

    Bold needs at least two computed rows with errors, the best and the runner-up separated by
    more than the sum of their errors, an AUC not saturated (|AUC - 0.5| < 0.49), and, for FPND
    (a distance to real JetNet), a real-JetNet reference."""
    if name == "fpnd" and not ref_is_jetnet:
        return None
    vals = [(r.model, r.metrics[name]) for r in table.records if name in r.metrics]
    vals = [(model, m) for model, m in vals if m.value is not None and math.isfinite(m.value)
            and m.error is not None and math.isfinite(m.error)]
    if len(vals) < 2:
        return None
    key = _rank_key(vals[0][1].better)
    (best, mb), (_, m2) = sorted(vals, key=lambda mv: key(mv[1].value))[:2]
    if vals[0][1].better == "closer to 0.5" and key(mb.value) >= 0.49:
        return None
    return best if key(m2.value) - key(mb.value) > mb.error + m2.error else None


def _sizes_line(prov: dict[str, Any]) -> str:
    """Which samples each row compares (the protocol) and how many objects each metric used."""
    objects = "jets" if "n_jets" in prov else "showers"
    text = protocol_text(prov.get("protocol"), objects)
    c = prov.get("config", {})
    n = (prov.get("protocol") or {}).get("generated_rows", prov.get("n_jets", prov.get("n_showers")))
    if objects == "showers" or "w1_samples" not in c or n is None:
        return text
    cls = min(c.get("classifier_max_jets", n), n)
    return (f"{text} Objects per metric: W1 {c['w1_batches']} batches of {min(c['w1_samples'], n):,}; FPD fitted over "
            f"{c['fpd_points']} sizes up to {min(c['fpd_max_samples'], n):,}; KPD {c['kpd_batches']} batches of "
            f"{min(c['kpd_batch_size'], n):,}; COV/MMD {c['cov_batches']} batches of {c['cov_samples']}; KL "
            f"{c['kl_bins']} bins, {c['kl_bootstrap']} bootstraps; classifiers {cls:,} per class, "
            f"{c['classifier_folds']}-fold; FPND all {n:,} generated jets.")


def _cnn_not_reported(r: EvaluationResult) -> dict[str, str]:
    """Why the CNN classifier of a record is not reported, by side ("" for the model, "truth row: ")."""
    out = {}
    for side, key in (("", "details"), ("truth row: ", "truth_details")):
        why = ((r.provenance.get(key) or {}).get("classifier_cnn") or {}).get("not_reported")
        if why:
            out[side] = why
    return out


def _shared_cnn_reason(records: list[EvaluationResult]) -> str | None:
    """The one reason, when the CNN classifier is not reported on both sides of every row for it."""
    reasons = [_cnn_not_reported(r) for r in records]
    whys = {w for r in reasons for w in r.values()}
    return whys.pop() if records and len(whys) == 1 and all(len(r) == 2 for r in reasons) else None


def _model_line(r: EvaluationResult, cnn_in_footer: bool = False) -> str:
    """A model's footnote: training length, sample checksums, generation time with its machine
    (and why its CNN classifier is not reported, unless the footer says it once for all rows)."""
    prov = r.provenance
    training = (prov.get("training") or {}).get("text") or (UNTRAINED_TEXT if getattr(GENERATORS.get(r.model), "fitted", False)
                                                            else "training not recorded")
    rows = f"{prov['samples_rows']:,} sampled, " if prov.get("samples_rows") else ""
    parts = [f"- {r.model}: {training}; {rows}samples md5 {prov.get('samples_md5')}"]
    if prov.get("samples_data_md5"):
        parts.append(f"data md5 {prov['samples_data_md5']}")
    t = prov.get("generation_time_per_object_s")
    if t:
        unit = "jet" if r.kind == "jets" else "shower"
        per = f"{fmt_number(t * 1e6, 3)} us" if t < 1e-3 else f"{fmt_number(t * 1e3, 3)} ms"
        hw = prov.get("generation_hardware") or {}
        where = ", ".join(x for x in (hw.get("device"), counted(hw['cpu_count'], "core") if hw.get("cpu_count") else None,
                                      counted(hw['torch_threads'], "thread") if hw.get("torch_threads") else None,
                                      f"batch {prov['generation_batch_size']}" if prov.get("generation_batch_size") else None)
                          if x)
        loaded = (hw.get("load") or {}).get("loaded")
        flag = "; measured on a LOADED machine" if loaded else ""
        parts.append(f"{per} per {unit} ({where or 'machine not recorded'}, warm-up excluded{flag})")
    cost = prov.get("cost")
    if cost:
        unit = "jet" if r.kind == "jets" else "shower"
        cells = "; ".join(f"batch {t['batch']}, {counted(t['threads'], 'thread')}: {fmt_number(t['ms_per_object'], 3)} ± "
                          f"{fmt_number(t['ms_per_object_std'] or 0.0, 2)} ms" for t in cost["timings"])
        flops = cost.get("flops_per_object")
        parts.append(f"pcbench time on {cost['device']}: {cells} per {unit}; {cost['parameters']:,} parameters used in "
                     f"sampling" + (f", {fmt_flops(flops)} per {unit}" if flops is not None else ""))
    if not cnn_in_footer:
        parts += [f"{side}CNN classifier not reported ({why})" for side, why in _cnn_not_reported(r).items()]
    return ", ".join(parts)


@dataclass(frozen=True)
class Layout:
    """A table as text cells, for every renderer (Markdown here, HTML in ``site.py``): the
    headers, the rows ``(model, kind, cells, bold)`` and the footer paragraphs."""

    title: str
    header: list[str]
    rows: list[tuple[str, str, list[str], list[bool]]]
    footer: list[str]
    models: list[str]


def layout(table: Table) -> Layout:
    """The cells of ``table``: headers name the quantity and the column's scale; one scale per
    column keeps values between 0.1 and 1000; a distance consistent with zero prints as
    ``< bound``; bold marks the best row only where it is better beyond the errors."""
    table.check()
    metrics = table.metrics
    first = {n: next(r.metrics[n] for r in table.records if n in r.metrics) for n in metrics}
    rows = table.rows()
    scales = {n: column_scale([_raw(v.get(n), first[n].scale)[0] for _, _, v in rows], first[n].scale) for n in metrics}
    ref = str(table.records[0].provenance.get("reference")) if table.records else table.benchmark
    ref_is_jetnet = ref.split(":")[0] in JET_TARGETS
    bold = {n: _bold_model(table, n, ref_is_jetnet) for n in metrics}
    header = ["model"] + [display_header(n, scales[n]) for n in metrics]
    cells_rows = []
    for model, kind, values in rows:
        cells, flags = [], []
        for n in metrics:
            value, err = _raw(values.get(n), first[n].scale)
            cells.append(fmt_value(value, err, scales[n], first[n].better))
            flags.append(kind == "computed" and bold[n] == model)
        cells_rows.append((model, kind, cells, flags))
    objects = "jets" if table.records and table.records[0].kind == "jets" else "showers"
    docs = "docs/metrics-jets.md" if objects == "jets" else "docs/metrics-showers.md"
    footer = ["Values are mean ± error, times the scale in the header (x10^3: the value times 10^3). "
              "'< b': a distance (0 = identical) consistent with zero, estimate + error below b. Bold: the best "
              "computed row of a column, only where it is better than the runner-up by more than their errors "
              "added (no bold for saturated AUCs, or for FPND on a reference that is not real JetNet). "
              f"Definitions: {docs}."]
    errors = "; ".join(f"{n}: {error_definition(n)}" for n in metrics)
    footer.append(f"Errors: {errors}.")
    if "fpnd" in metrics:
        note = ("" if ref_is_jetnet else " This reference is not real JetNet: its truth row is the reference's own "
                "distance to JetNet, and a model below it is not better than truth.")
        footer.append("FPND is a distance to the real JetNet30 statistics (shipped with jetnet), whatever the "
                      "reference." + note)
    if table.published:
        stated = dict.fromkeys(f"{p.source}: {p.protocol}" for p in table.published)
        footer.append("Published rows are quoted from their source (values as printed there, rescaled to the "
                      "column's scale), not recomputed, and never bold; they were made with their paper's protocol: "
                      + "; ".join(stated) + ".")
    if table.records:
        prov = table.records[0].provenance
        key = table.comparable_key(table.records[0])
        md5 = key["reference_md5"]
        md5_text = md5 if isinstance(md5, str) else ", ".join(f"{k} {v}" for k, v in sorted((md5 or {}).items()))
        param = any(r.provenance.get("samples_parameterised") or r.provenance.get("reference_parameterised")
                    for r in table.records)
        if param:
            footer.append("**PARAMETERISED showers (pcbench's GFlash-type model), not Geant4**: these numbers say how "
                          "well a model learns these showers, not how it does on real data.")
        footer.append("Provenance: reference "
                      f"`{key['reference']}` ({key['reference_split']} split, md5 {md5_text}); suite "
                      f"{key['suite_version']}, profile {key['profile']}, seed {prov.get('seed')}, pcbench "
                      f"{prov.get('pcbench_version')}.")
        footer.append(_sizes_line(prov))
    cnn = _shared_cnn_reason(table.records)
    if cnn:
        footer.append(f"CNN classifier not reported for any row or its truth row ({cnn}).")
    models = [_model_line(r, cnn is not None) for r in sorted(table.records, key=lambda r: r.model)]
    return Layout(table.benchmark, header, cells_rows, footer, models)


def to_markdown(table: Table, data_line: str | None = None) -> str:
    """The Markdown table with its footer (deterministic: same records, same bytes); ``data_line``:
    a last footer line (the md5 of the CSV written with it, see ``store.py``)."""
    lay = layout(table)
    lines = [f"# {lay.title}", "", "| " + " | ".join(lay.header) + " |", "|" + "---|" * len(lay.header)]
    for model, _, cells, flags in lay.rows:
        lines.append("| " + " | ".join([model] + [f"**{c}**" if b else c for c, b in zip(cells, flags)]) + " |")
    for paragraph in lay.footer:
        lines += ["", paragraph]
    if lay.models:
        lines += [""] + lay.models
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
        out.setdefault(bench, []).append(PublishedRow(model, source, values, published_protocol(source)))
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
    def real(rs: list[EvaluationResult]) -> bool:  # published (Geant4 / JetNet) rows never beside parameterised data
        return not any(r.provenance.get("samples_parameterised") or r.provenance.get("reference_parameterised")
                       for r in rs)

    tables = [Table(b, rs, list((published or {}).get(b, [])) if real(rs) else [])
              for b, rs in sorted(groups.items())]
    for t in tables:
        t.check()
    return tables


def table_stem(table: Table) -> str:
    """The file name of a table without suffix: its benchmark with other characters as ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in table.benchmark)

