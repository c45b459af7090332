"""``pcbench leaderboard build|run|reproduce`` and ``pcbench demo``."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import click

from .._io import atomic_write_text
from ..leaderboard import (build_tables, load_config, read_published, read_records, reproduce, run_pipeline, write_tables)
from . import cli, console


@cli.group()
def leaderboard() -> None:
    """Comparable tables from result records; configs that make them; their reproduction."""


@leaderboard.command("build")
@click.argument("records", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboard"),
              show_default=True)
@click.option("--published", "published", default="builtin", show_default=True,
              help="CSV of published rows (benchmark, model, source, metric, value, error), 'builtin' for "
                   "pcbench's, 'none' for no published rows.")
def build_cmd(records: tuple[Path, ...], out_dir: Path, published: str) -> None:
    """Write one Markdown and one CSV table per benchmark from RECORDS (JSON files or folders).

    Published rows of the same benchmark are shown below the computed ones, labelled.  Both files
    of every table are renamed into place only when all are written; a pair left half new by a
    killed build is rewritten (or, if this build does not make it, refused)."""
    from ..leaderboard.published import published_rows

    rows = {} if published == "none" else published_rows() if published == "builtin" else read_published(published)
    tables = build_tables(read_records(records), rows)
    report = write_tables(tables, out_dir)
    if report.removed_temps:
        console.print(f"removed {len(report.removed_temps)} temporary file(s) left by a killed run in {out_dir}",
                      highlight=False, soft_wrap=True)
    for problem in report.repaired:
        console.print(f"[yellow]repaired[/]: {problem}; rewritten", highlight=False, soft_wrap=True)
    for table, (md, csv_path) in zip(tables, report.written):
        n = len(table.records)
        console.print(f"[green]wrote[/] {md} and {csv_path} ({n} model{'' if n == 1 else 's'})", highlight=False,
                      soft_wrap=True)


@leaderboard.command("run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Working directory (default: CONFIG's folder / work, not committed).")
@click.option("--plots", is_flag=True, help="Write figures and HTML reports too.")
def run_cmd(config: Path, work: Path | None, plots: bool) -> None:
    """Run CONFIG (data -> train -> sample -> evaluate) and write its tables beside it."""
    cfg = load_config(config)
    run_pipeline(cfg, work or config.parent / "work", config.parent, plots=plots, log=console.print)
    console.print(f"tables in {config.parent}", highlight=False)


@leaderboard.command("site")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="Folder of the site (replaced whole).")
def site_cmd(root: Path, out_dir: Path) -> None:
    """Write a static HTML site of every table under ROOT (sortable, with the models' reports)."""
    from ..leaderboard.site import build_site

    pages = build_site(root, out_dir)
    console.print(f"[green]wrote[/] {out_dir}/index.html and {len(pages) - 1} table page(s); open it from disk",
                  highlight=False, soft_wrap=True)


@leaderboard.command("reproduce")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def reproduce_cmd(config: Path) -> None:
    """Re-run CONFIG and compare with its committed tables; exit 1 with a diff if they differ."""
    diffs = reproduce(config, log=lambda msg: console.print(msg, highlight=False, soft_wrap=True))
    if diffs:
        console.print(f"[red]not reproduced[/]: {len(diffs)} difference(s)", highlight=False)
        for d in diffs:
            console.print(f"  {d}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    console.print(f"[green]reproduced[/] {config}", highlight=False)


@leaderboard.command("pareto")
@click.argument("records", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--metric", required=True, help="The metric on the y axis, by its record name (e.g. w1m, fpd, auc_hl).")
@click.option("--out", "out_png", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The figure (PNG).")
@click.option("--cost", "cost_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A cost record of `pcbench time` (repeatable), matched by model name; its time replaces the "
                   "sample file's.")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Cost records: the batch whose time to use [default: each record's fastest cell].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Cost records: the thread count whose time to use [default: each record's fastest cell].")
@click.option("--benchmark", default=None, help="Where RECORDS hold several benchmarks: the one to draw.")
def pareto_cmd(records: tuple[Path, ...], metric: str, out_png: Path, cost_files: tuple[Path, ...],
               batch: int | None, threads: int | None, benchmark: str | None) -> None:
    """Draw METRIC against time per object for the rows of RECORDS (JSON files or folders), the
    Pareto front (no model both faster and better) highlighted (docs/cost.md)."""
    from .._outputs import output_file
    from ..leaderboard.pareto import describe, pareto_figure
    from ..models.cost import CostRecord

    output_file(out_png, "--out")
    costs = [CostRecord.read(p) for p in cost_files]
    fig = pareto_figure(read_records(records), metric, out_png, costs, batch, threads, benchmark)
    for line in describe(fig):
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    for model, why in fig.skipped.items():
        console.print(f"[yellow]not drawn[/]: {model} ({why})", highlight=False, soft_wrap=True)
    for model in fig.unmatched_costs:
        console.print(f"[yellow]unused[/]: the cost record of {model} matches no row of {fig.benchmark}",
                      highlight=False, soft_wrap=True)
    console.print(f"[green]wrote[/] {fig.path}: {fig.metric} ({fig.better} is better) against time per object, "
                  f"front: {', '.join(fig.front_models)}", highlight=False, soft_wrap=True)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results/demo"),
              show_default=True, help="Output folder (the committed demo is made with --out leaderboard/demo).")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("results/demo-work"),
              show_default=True)
def demo(out_dir: Path, work: Path) -> None:
    """Offline demo: simulate gluon jets, train the small generators a few minutes each, sample,
    evaluate with plots, and write the leaderboard (Markdown, CSV, figures) to OUT."""
    with resources.as_file(resources.files("pcbench.leaderboard") / "demo.yaml") as path:
        cfg = load_config(path)
        config_text = Path(path).read_text(encoding="utf-8")
    atomic_write_text(out_dir / "config.yaml", config_text)
    run_pipeline(cfg, work, out_dir, plots=True, log=console.print)
    console.print(f"[green]demo done[/]: table {out_dir}/*.md, CSV {out_dir}/*.csv, "
                  f"reports {out_dir}/records/*.html", highlight=False)
