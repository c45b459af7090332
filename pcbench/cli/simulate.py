"""``pcbench simulate``: offline data in the layouts of the public data sets."""

from __future__ import annotations

from pathlib import Path

import click

from ..data import Cache
from ..data.containers import JET_TYPES
from ..data.simulate import JET_TARGETS, SHOWER_TARGETS, simulate as simulate_target
from .._outputs import folder_problem
from . import cli, console
from .data import writable_cache_option


def _writable_output(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """``-o`` must lie in an existing, writable folder: checked before any work starts (exit 2)."""
    if value is not None:
        problem = folder_problem(value.parent, create=False)
        if problem:
            raise click.BadParameter(problem)
    return value


@cli.command()
@click.argument("target", type=click.Choice(sorted(JET_TARGETS) + sorted(SHOWER_TARGETS)))
@click.option("--jet-type", type=click.Choice(JET_TYPES), default="g", show_default=True, help="Jets: the class.")
@click.option("--file", "file_key", default=None,
              help="Showers: member of TARGET-param to write (ild-photons: train|test; calochallenge-2: 1|2) "
                   "[default: the first].")
@click.option("-n", "--num", "n", type=click.IntRange(min=1), default=None,
              help="Jets or showers to make [default: 20000 jets, 2000 showers].")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Master seed, >= 0 (same seed, same bytes) [default: 1; showers: 1 + the member's position].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, callback=_writable_output,
              help="Output file (default: the cache, as data set TARGET-sim:JET_TYPE or TARGET-param:FILE). "
                   "One run at a time may write it; a second is refused.")
@click.option("--resume", is_flag=True,
              help="Keep the chunks an interrupted run left; refused if they were made with other settings or seed.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None,
              help="Objects per chunk (changes the seeds) [default: 250 jets, 100 showers].")
@writable_cache_option
def simulate(target: str, jet_type: str, file_key: str | None, n: int | None, seed: int | None, workers: int,
             output: Path | None, resume: bool, chunk_size: int | None, cache_dir: Path | None) -> None:
    """Make offline data: jets with Pythia 8 + FastJet (docs/simulation-jets.md), or PARAMETERISED
    calorimeter showers (docs/simulation-showers.md)."""
    done = simulate_target(target, n, seed, jet_type, file_key, output, Cache(cache_dir), workers, resume, chunk_size)
    console.print(f"[green]wrote[/] {done.path}: {done.n} {done.what}, seed {done.seed}", highlight=False)
