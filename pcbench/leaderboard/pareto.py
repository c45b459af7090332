"""Quality against cost: the Pareto front of a leaderboard's rows (the models that no other model
beats on a metric and on time per object at once) and its figure (``docs/cost.md``).

A row's time per object [s] comes from its cost record (``pcbench time``, matched by model name)
when one is given, else from the record's provenance (``generation_time_per_object_s``: what
``pcbench sample`` measured).  A row *dominates* another when it is no slower and no worse on
the metric, and strictly better on one of the two; "better" follows the metric's direction
(``MetricValue.better``: "lower", "higher", "closer to 0.5", "closer to 1", any "closer to X").
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from .._plotting import pyplot, save_png
from ..errors import MetricError, UsageError
from ..evaluate.display import column_scale, counted, fmt_number, label
from ..evaluate.display import header as display_header
from ..evaluate.result import EvaluationResult
from ..models.cost import CostRecord
from .tables import Table, build_tables

__all__ = ["ParetoPoint", "ParetoFigure", "better_key", "pareto_front", "pareto_points", "pareto_figure", "describe"]

def better_key(better: str) -> Callable[[float], float]:
    """A key that is smaller for a better metric value (``metrics.null.badness``): "lower" v,
    "higher" -v, "closer to X" |v - X|."""
    from ..metrics.null import badness

    try:
        badness(0.0, better)
    except ValueError:
        raise UsageError(f"better {better!r}: expected 'lower', 'higher' or 'closer to X' (e.g. 'closer to 0.5')"
                         ) from None
    return lambda v: float(badness(v, better))


@dataclass(frozen=True)
class ParetoPoint:
    """One row: model, time per object [s], metric value and error (unscaled), where the time came from."""

    model: str
    time_s: float
    value: float
    error: float | None = None
    time_source: str = ""


def pareto_front(points: Sequence[ParetoPoint | tuple[float, float]], better: str = "lower") -> list[int]:
    """Indices (in input order) of the non-dominated points: no other point is at least as fast
    and at least as good on the metric and strictly better on one.  Points are ParetoPoints or
    (time per object, metric value) pairs; a point with a non-finite time or value is never on
    the front and dominates nothing; identical points do not dominate each other."""
    key = better_key(better)
    pairs = [(p.time_s, p.value) if isinstance(p, ParetoPoint) else (float(p[0]), float(p[1])) for p in points]
    ok = [math.isfinite(t) and math.isfinite(v) for t, v in pairs]
    scored = [(t, key(v)) for t, v in pairs]
    front = []
    for i, (ti, ki) in enumerate(scored):
        if not ok[i]:
            continue
        dominated = any(ok[j] and tj <= ti and kj <= ki and (tj < ti or kj < ki)
                        for j, (tj, kj) in enumerate(scored) if j != i)
        if not dominated:
            front.append(i)
    return front


@dataclass
class ParetoFigure:
    """What :func:`pareto_figure` drew: the file, the benchmark, the metric, the points, the
    indices of the front, the models left out (and why), the cost records no row matched and
    the figure's title."""

    path: Path
    benchmark: str
    metric: str
    better: str
    points: list[ParetoPoint]
    front: list[int]
    skipped: dict[str, str] = field(default_factory=dict)
    unmatched_costs: list[str] = field(default_factory=list)
    title: str = ""

    @property
    def front_models(self) -> list[str]:
        return [self.points[i].model for i in self.front]


def _choose_table(records: Iterable[EvaluationResult], metric: str, benchmark: str | None) -> Table:
    tables = build_tables(records, {})
    if benchmark is not None:
        tables = [t for t in tables if t.benchmark == benchmark]
        if not tables:
            raise UsageError(f"--benchmark {benchmark}: no records of that benchmark")
    with_metric = [t for t in tables if metric in t.metrics]
    if not with_metric:
        known = sorted({m for t in tables for m in t.metrics})
        raise MetricError(f"--metric {metric}: no record has it (the records have: {', '.join(known)})")
    if len(with_metric) > 1:
        raise UsageError(f"--metric {metric}: records of several benchmarks have it "
                         f"({', '.join(t.benchmark for t in with_metric)}); choose one with --benchmark NAME")
    return with_metric[0]


def pareto_points(records: Iterable[EvaluationResult], metric: str, costs: Iterable[CostRecord] | None = None,
                  batch: int | None = None, threads: int | None = None, benchmark: str | None = None
                  ) -> tuple[Table, list[ParetoPoint], dict[str, str], list[str]]:
    """(the benchmark's table, its rows as points, models skipped -> why, cost records no row
    matched).  ``costs``: cost records, matched to rows by model name; their time is the cell of
    ``batch`` and ``threads`` (where None: the fastest cell, see ``CostRecord.timing``)."""
    table = _choose_table(records, metric, benchmark)
    by_model: dict[str, CostRecord] = {}
    for c in costs or []:
        if c.model in by_model:
            raise UsageError(f"two cost records of model {c.model!r} ({by_model[c.model].checkpoint}, {c.checkpoint}); "
                             "give one per model")
        by_model[c.model] = c
    points, skipped = [], {}
    for r in sorted(table.records, key=lambda r: r.model):
        m = r.metrics.get(metric)
        if m is None or m.value is None or not math.isfinite(m.value):
            skipped[r.model] = f"no finite {metric}"
            continue
        cost = by_model.get(r.model)
        summary = _summary_cell(r.provenance.get("cost"), batch, threads)
        if cost is not None:
            cell = cost.timing(batch, threads)
            t = cell.ms_per_object / 1e3
            source = f"cost record (batch {cell.batch}, {counted(cell.threads, 'thread')}, {cost.device})"
        elif summary is not None:
            t = summary["ms_per_object"] / 1e3
            source = f"the record's cost (batch {summary['batch']}, {counted(summary['threads'], 'thread')})"
        else:
            t, source = r.provenance.get("generation_time_per_object_s"), "sample file (pcbench sample)"
        if t is None or not math.isfinite(float(t)) or float(t) <= 0:
            skipped[r.model] = "no time per object (give its cost record)"
            continue
        err = None if m.error is None or not math.isfinite(m.error) else float(m.error)
        points.append(ParetoPoint(r.model, float(t), float(m.value), err, source))
    unmatched = sorted(set(by_model) - {r.model for r in table.records})
    return table, points, skipped, unmatched


def _summary_cell(cost: dict | None, batch: int | None, threads: int | None) -> dict | None:
    """The fastest timing of a record's ``cost`` summary (a leaderboard's ``cost`` step) that
    matches ``batch`` and ``threads`` (None: any)."""
    cells = [t for t in (cost or {}).get("timings", []) if (batch is None or t["batch"] == batch)
             and (threads is None or t["threads"] == threads) and t.get("ms_per_object")]
    return min(cells, key=lambda t: t["ms_per_object"]) if cells else None


def _parameterised(records: Iterable[EvaluationResult]) -> bool:
    return any(r.provenance.get("samples_parameterised") or r.provenance.get("reference_parameterised")
               for r in records)


def pareto_figure(records: Iterable[EvaluationResult], metric: str, out_png: str | os.PathLike[str],
                  costs: Iterable[CostRecord] | None = None, batch: int | None = None, threads: int | None = None,
                  benchmark: str | None = None) -> ParetoFigure:
    """Write a PNG of ``metric`` (with its error bar) against time per object (log x), the front
    highlighted and joined, each point labelled with its model, the truth-vs-truth value as a
    dashed line where recorded; the title says when the data are parameterised showers."""
    records = list(records)
    table, points, skipped, unmatched = pareto_points(records, metric, costs, batch, threads, benchmark)
    if not points:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise UsageError(f"--metric {metric}: no row of {table.benchmark} has both a value and a time per object "
                         f"({why})")
    first = next(r.metrics[metric] for r in table.records if metric in r.metrics)
    better = first.better
    front = pareto_front(points, better)
    scale = column_scale([p.value for p in points], first.scale)
    unit = "jet" if table.records[0].kind == "jets" else "shower"

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    on = set(front)
    for i, p in enumerate(points):
        ms = p.time_s * 1e3
        yerr = None if p.error is None else p.error * scale
        style = dict(color="C3", marker="o", ms=7, zorder=3) if i in on else dict(color="0.45", marker="o", ms=5,
                                                                                     mfc="white", zorder=2)
        ax.errorbar([ms], [p.value * scale], yerr=None if yerr is None else [yerr], capsize=3, lw=1, **style)
        ax.annotate(p.model, (ms, p.value * scale), textcoords="offset points", xytext=(5, 5), fontsize=8,
                    color=style["color"])
    fr = sorted((points[i].time_s * 1e3, points[i].value * scale) for i in front)
    if len(fr) > 1:
        ax.step([x for x, _ in fr], [y for _, y in fr], where="post", color="C3", lw=1, alpha=0.6,
                label="Pareto front (no model faster and better)")
    else:
        ax.plot([], [], color="C3", marker="o", ls="", label="Pareto front (no model faster and better)")
    if first.truth is not None and math.isfinite(first.truth):
        ax.axhline(first.truth * scale, color="0.3", ls="--", lw=1, label="truth vs truth")
    ax.set_xscale("log")
    ys = [p.value * scale for p in points]
    log_y = better == "lower" and min(ys) > 0 and max(ys) / min(ys) > 100
    if log_y:  # a distance whose rows span more than a factor 100: linear axes flatten all but the worst
        ax.set_yscale("log")
    ax.set_xlabel(f"time per {unit} [ms] (log scale; warm-up excluded)")
    ylabel = f"{display_header(metric, scale)}, {better} is better" + (" (log scale)" if log_y else "")
    ax.set_ylabel("\n".join(textwrap.wrap(ylabel, 55)), fontsize=8)
    xs = [p.time_s * 1e3 for p in points]
    lo, hi = min(xs), max(xs)
    ax.set_xlim(lo / 2, hi * 2)
    title = "\n".join(textwrap.wrap(f"{table.benchmark}: {label(metric)} against time per {unit}", 80))
    if _parameterised(table.records):
        title += "\nPARAMETERISED showers (pcbench's GFlash-type model), not Geant4"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="best")
    sources = sorted({p.time_source for p in points})
    note = "time from: " + "; ".join(sources)
    if skipped:
        note += ". Not drawn: " + "; ".join(f"{k} ({v})" for k, v in sorted(skipped.items()))
    fig.text(0.01, 0.005, note, fontsize=6, color="0.35", ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = save_png(fig, out_png)
    return ParetoFigure(path, table.benchmark, metric, better, points, front, skipped, unmatched, title)


def describe(fig: ParetoFigure) -> list[str]:
    """One line per point: model, time, value, on the front or not (for the command line)."""
    lines = []
    for i, p in enumerate(fig.points):
        err = "" if p.error is None else f" ± {fmt_number(p.error, 2)}"
        mark = "front" if i in fig.front else "dominated"
        lines.append(f"{p.model}: {fmt_number(p.time_s * 1e3)} ms per object, {fig.metric} {fmt_number(p.value)}{err} "
                     f"({mark}; time from {p.time_source})")
    return lines

