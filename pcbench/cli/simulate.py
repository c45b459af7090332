"""``pcbench simulate``: offline data in the layouts of the public data sets."""

from __future__ import annotations

from pathlib import Path

import click

from ..data import Cache, default_registry
from ..data.containers import JET_TYPES
from ..data.simulate import JetSimConfig, simulate_jets
from ..errors import PcbenchError
from . import cli, console
from .data import cache_option

JET_TARGETS = {"jetnet30": 30, "jetnet150": 150}


@cli.command()
@click.argument("target", type=click.Choice(sorted(JET_TARGETS)))
@click.option("--jet-type", type=click.Choice(JET_TYPES), default="g", show_default=True)
@click.option("-n", "--num", "n", type=int, default=20000, show_default=True, help="Jets to make.")
@click.option("--seed", type=int, default=1, show_default=True, help="Master seed (same seed, same bytes).")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: the cache, as data set TARGET-sim:JET_TYPE).")
@click.option("--resume", is_flag=True, help="Keep the chunks an interrupted run with the same settings left.")
@click.option("--chunk-size", type=int, default=250, show_default=True, help="Jets per chunk (changes the seeds).")
@cache_option
def simulate(target: str, jet_type: str, n: int, seed: int, workers: int, output: Path | None,
             resume: bool, chunk_size: int, cache_dir: Path | None) -> None:
    """Make offline jets in the JetNet layout with Pythia 8 + FastJet (docs/simulation-jets.md)."""
    if n <= 0:
        raise PcbenchError(f"-n must be positive, got {n}")
    if output is None:
        entry = default_registry().get(f"{target}-sim")
        output = Cache(cache_dir).path(entry, entry.file(jet_type))
    config = JetSimConfig(jet_type=jet_type, num_particles=JET_TARGETS[target])
    path = simulate_jets(n, config, output, seed=seed, workers=workers, resume=resume, chunk_size=chunk_size)
    console.print(f"[green]wrote[/] {path}: {n} {jet_type} jets, {config.num_particles} particles each "
                  f"(Pythia 8 + FastJet, seed {seed})", highlight=False)
