"""``pcbench leaderboard build|run|reproduce`` and ``pcbench demo``."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import click

from ..evaluate import EvaluationResult
from ..leaderboard import build_tables, load_config, read_published, reproduce, run_pipeline, write_table
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

    Published rows of the same benchmark are shown below the computed ones, labelled."""
    files = [p for r in records for p in ([r] if r.is_file() else sorted(r.glob("*.json")))]
    rows = {} if published == "none" else read_published(None if published == "builtin" else published)
    for table in build_tables((EvaluationResult.read(f) for f in files), rows):
        md, csv_path = write_table(table, out_dir)
        console.print(f"[green]wrote[/] {md} and {csv_path} ({len(table.records)} models)", highlight=False)


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


@leaderboard.command("reproduce")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def reproduce_cmd(config: Path) -> None:
    """Re-run CONFIG and compare with its committed tables; exit 1 with a diff if they differ."""
    diffs = reproduce(config, log=console.print)
    if diffs:
        console.print(f"[red]not reproduced[/]: {len(diffs)} difference(s)", highlight=False)
        for d in diffs:
            console.print(f"  {d}", highlight=False, markup=False)
        sys.exit(1)
    console.print(f"[green]reproduced[/] {config}", highlight=False)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboard/demo"),
              show_default=True)
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("results/demo-work"),
              show_default=True)
def demo(out_dir: Path, work: Path) -> None:
    """Offline demo: simulate gluon jets, train the small generators a few minutes each, sample,
    evaluate with plots, and write the leaderboard (Markdown, CSV, figures) to OUT."""
    with resources.as_file(resources.files("pcbench.leaderboard") / "demo.yaml") as path:
        cfg = load_config(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(Path(path).read_text())
    run_pipeline(cfg, work, out_dir, plots=True, log=console.print)
    console.print(f"[green]demo done[/]: table {out_dir}/*.md, CSV {out_dir}/*.csv, "
                  f"reports {out_dir}/records/*.html", highlight=False)
