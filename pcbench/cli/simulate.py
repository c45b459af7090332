"""``pcbench simulate``: offline data in the layouts of the public data sets."""

from __future__ import annotations

from pathlib import Path

import click

from ..data import Cache, default_registry
from ..data.containers import JET_TYPES
from ..data.simulate import JetSimConfig, simulate_jets
from ..data.simulate.showers import LABEL, SHOWER_TARGETS, simulate_showers
from .._outputs import folder_problem
from . import cli, console
from .data import writable_cache_option

JET_TARGETS = {"jetnet30": 30, "jetnet150": 150}


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
    if target in JET_TARGETS:
        n = n or 20000
        seed = 1 if seed is None else seed
        if output is None:
            entry = default_registry().get(f"{target}-sim")
            output = Cache(cache_dir).path(entry, entry.file(jet_type))
        config = JetSimConfig(jet_type=jet_type, num_particles=JET_TARGETS[target])
        path = simulate_jets(n, config, output, seed=seed, workers=workers, resume=resume, chunk_size=chunk_size or 250)
        console.print(f"[green]wrote[/] {path}: {n} {jet_type} jets, {config.num_particles} particles each "
                      f"(Pythia 8 + FastJet, seed {seed})", highlight=False)
        return
    n = n or 2000
    entry = default_registry().get(f"{target}-param")
    keys = [f.key for f in entry.files]
    file_key = file_key or keys[0]
    member = entry.file(file_key)
    seed = 1 + keys.index(file_key) if seed is None else seed
    output = output or Cache(cache_dir).path(entry, member)
    path = simulate_showers(target, n, output, seed=seed, workers=workers, resume=resume, chunk_size=chunk_size or 100)
    console.print(f"[green]wrote[/] {path}: {n} {target} showers, seed {seed}: {LABEL}", highlight=False)
