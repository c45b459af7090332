"""``pcbench compare``: several sample files ranked at once by one multiclass classifier."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..data import Cache
from . import cli, console
from .data import cache_option

__all__ = ["compare_cmd", "render"]


def render(result) -> Table:
    """A rich table of a ``CompareResult``: rank, model, each score with its error; a leading *
    marks (in bold) a first place beyond both errors."""
    from ..evaluate.compare import reference_text

    header, rows = result.table()
    p = result.provenance
    title = (f"{len(result.models)} models against {reference_text(p)}, "
             f"{result.summary['n_per_class']} objects per class, {p['profile']} profile")
    if p.get("reference_parameterised") or p.get("samples_parameterised"):
        title += " [PARAMETERISED showers, not Geant4]"
    table = Table(title=escape(title))
    for h in header:
        table.add_column(escape(h), overflow="fold")
    for row in rows:
        table.add_row(*(f"[bold]{escape(c[1:])}[/bold]" if c.startswith("*") else escape(c) for c in row))
    return table


@cli.command("compare")
@click.argument("samples", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reference", required=True, help="Registry name (its test split is used) or an HDF5 file.")
@click.option("--profile", type=click.Choice(["full", "fast"]), default="full", show_default=True,
              help="full: the CaloChallenge DNN on every object; fast: boosted trees, at most 10,000 per class.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the subsampling, folds and classifier.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Directory for the JSON record and the Markdown table.")
@click.option("--name", "names", multiple=True,
              help="Name of a sample in the tables; give it once per sample, in order (default: from the file).")
@click.option("--reference-class", is_flag=True,
              help="Also train the reference as a class (a variant: the papers' classifier knows the models only) "
                   "and report log p(reference | model's objects).")
@click.option("--energy-check", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Showers: refuse samples whose incident energies do not follow the reference's.")
@click.option("--device", default="cpu", show_default=True, help="torch device of the DNN: cpu, cuda or cuda:N.")
@cache_option
def compare_cmd(samples: tuple[Path, ...], reference: str, profile: str, seed: int, out_dir: Path,
                names: tuple[str, ...], reference_class: bool, energy_check: str, device: str,
                cache_dir: Path | None) -> None:
    """Rank several sample files at once: one multiclass classifier on all samples, the mean
    log-posterior of each model on the reference's objects.

    As the CaloChallenge 2022 write-up and the EPiC-FM paper: the classifier learns to tell the
    SAMPLES apart (two or more files of one kind, on the reference's geometry); applied to
    held-out objects of the reference it gives, per model, the mean log p(model | reference
    object), with errors from 5 folds: higher is better, log(1/C) when all models are equally good
    (docs/compare.md).
    """
    from .._outputs import output_dir
    from ..evaluate.compare import compare
    from ..evaluate.log import StageLog

    out_dir = output_dir(out_dir)
    with StageLog(out_dir / "compare.log", console, f"compare {' '.join(map(str, samples))} --reference {reference}") as log:
        result = compare(list(samples), reference, profile, seed, names or None, None, Cache(cache_dir), log,
                         reference_class=reference_class, energy_check=energy_check == "on", device=device)
    console.print(render(result))
    for line in result.footer():
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    json_path, md_path = result.write(out_dir)
    console.print(f"record: {json_path}\ntable: {md_path}", highlight=False, markup=False)
