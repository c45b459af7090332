"""``pcbench evaluate``: the metric suite of a sample file, as a table with errors and truth-vs-truth."""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.table import Table

from ..data import Cache
from ..evaluate import EvaluationResult, evaluate
from ..leaderboard.published import PUBLISHED, published_table
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
    size = f"{prov['n_jets']} jets" if "n_jets" in prov else f"{prov.get('n_showers')} showers on {prov.get('geometry')}"
    label = " [PARAMETERISED showers]" if prov.get("samples_parameterised") else ""
    table = Table(title=f"{result.model} vs {prov.get('reference')} ({prov.get('reference_split')} split), "
                        f"{size}, suite {prov.get('suite_version')} ({prov['config']['profile']}){label}")
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
@click.option("--energy-check", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Showers: refuse samples whose incident energies do not follow the reference's.")
@click.option("--jet-type", type=click.Choice(["g", "q", "t", "w", "z"]), default=None,
              help="Jets: their class, where neither file says it (FPND needs g, q or t).")
@click.option("--device", default="cpu", show_default=True,
              help="torch device of the networks (FPND, classifiers) and EFPs: cpu, cuda or cuda:N.")
@cache_option
def evaluate_cmd(samples: Path, reference: str, model_name: str | None, out_dir: Path, profile: str,
                 plots: bool, metrics: str, energy_check: str, jet_type: str | None, device: str,
                 cache_dir: Path | None) -> None:
    """Validate SAMPLES, run its metric suite against the reference, print and record the results."""
    with console.status("evaluating") as status:
        result = evaluate(samples, reference, model_name, profile, Cache(cache_dir), out_dir,
                          progress=lambda msg: status.update(f"evaluating: {msg}"), plots=plots,
                          metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
                          energy_check=energy_check == "on", jet_type=jet_type, device=device)
    console.print(render(result))
    console.print("values are mean ± error over batches, folds or bootstraps; definitions:\n" + legend(result),
                  highlight=False, markup=False)
    if "classifier" in result.provenance:
        console.print(f"classifier setting: {result.provenance['classifier']} (full = the challenge's DNN 2 x 2048, "
                      "50 epochs; fast = 2 x 256, 15 epochs)", highlight=False)
    if result.provenance.get("fpnd", "").startswith("skipped"):
        console.print(f"FPND {result.provenance['fpnd']}", highlight=False)
    console.print(f"record: {out_dir / (result.model + '.json')}", highlight=False)
    if plots:
        console.print(f"report: {out_dir / (result.model + '.html')}", highlight=False)


@cli.command("published")
@click.argument("name", type=click.Choice(sorted(PUBLISHED)))
@click.option("--csv", "as_csv", is_flag=True, help="Print the shipped CSV as it is (every column).")
def published_cmd(name: str, as_csv: bool) -> None:
    """Print a benchmark's PUBLISHED numbers (never computed by pcbench), to see where a model would rank."""
    table = published_table(name)
    if as_csv:
        from importlib import resources

        click.echo((resources.files("pcbench.leaderboard") / "published" / PUBLISHED[name][0]).read_text(encoding="utf-8"))
        return
    t = Table(title=f"{name}: published numbers ({table.source}); not computed by pcbench")
    for h in table.header:
        t.add_column(h, no_wrap=True)
    for row in table.rows:
        t.add_row(*row)
    from rich.console import Console

    Console(width=max(console.width, 40 + 16 * len(table.header))).print(t)  # wide: one line per submission
