"""``pcbench evaluate``: the metric suite of a sample file, as a table with errors and truth-vs-truth."""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.table import Table

from ..data import Cache
from ..evaluate import EvaluationResult, evaluate
from . import cli, console
from .data import cache_option


def _fmt(value: float | None, error: float | None, scale: float) -> str:
    if value is None:
        return "-"
    v = value * scale
    if error is None or math.isnan(error):
        return f"{v:.4g}"
    return f"{v:.4g} ± {error * scale:.2g}"


def render(result: EvaluationResult) -> Table:
    """A rich table of a result: metric, value ± error, truth-vs-truth, definition."""
    prov = result.provenance
    table = Table(title=f"{result.model} vs {prov.get('reference')} ({prov.get('reference_split')} split), "
                        f"{prov.get('n_jets')} jets, suite {prov.get('suite_version')} ({prov['config']['profile']})")
    for col in ("metric", "scale", "model", "truth vs truth", "better"):
        table.add_column(col, no_wrap=col != "better")
    for m in result.metrics.values():
        table.add_row(m.name, _scale(m.scale), _fmt(m.value, m.error, m.scale), _fmt(m.truth, m.truth_error, m.scale),
                      m.better)
    return table


def _scale(scale: float) -> str:
    return "" if scale == 1 else f"x1e{round(math.log10(scale))}"


def legend(result: EvaluationResult) -> str:
    """One line per metric: name, printed scale and definition (every number has its meaning)."""
    return "\n".join(f"  {m.name} {_scale(m.scale)}: {m.definition}" for m in result.metrics.values())


@cli.command("evaluate")
@click.argument("samples", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reference", required=True, help="Registry name (its test split is used) or an HDF5 file.")
@click.option("--model-name", default=None, help="Name of the model in the record (default: from the file).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Directory for the JSON result record.")
@click.option("--profile", type=click.Choice(["full", "fast"]), default="full", show_default=True,
              help="full: the papers' settings; fast: small batches (tests, demo).")
@click.option("--plots", is_flag=True, help="Also write PNG histograms (ratio panels) and an HTML report.")
@click.option("--metrics", default="", help="Comma-separated subset of metrics (default: all).")
@cache_option
def evaluate_cmd(samples: Path, reference: str, model_name: str | None, out_dir: Path, profile: str,
                 plots: bool, metrics: str, cache_dir: Path | None) -> None:
    """Validate SAMPLES, run its metric suite against the reference, print and record the results."""
    with console.status("evaluating") as status:
        result = evaluate(samples, reference, model_name, profile, Cache(cache_dir), out_dir,
                          progress=lambda msg: status.update(f"evaluating: {msg}"), plots=plots,
                          metrics=tuple(m for m in metrics.split(",") if m))
    console.print(render(result))
    console.print("values are mean ± error over batches, folds or bootstraps; definitions:\n" + legend(result),
                  highlight=False, markup=False)
    if result.provenance.get("fpnd", "").startswith("skipped"):
        console.print(f"FPND {result.provenance['fpnd']}", highlight=False)
    console.print(f"record: {out_dir / (result.model + '.json')}", highlight=False)
    if plots:
        console.print(f"report: {out_dir / (result.model + '.html')}", highlight=False)
