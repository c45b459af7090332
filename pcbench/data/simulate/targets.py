"""``simulate``: one entry point for every offline target (jets with Pythia 8 + FastJet,
PARAMETERISED showers), with its defaults (count, seed, chunk size) and its place in the cache
(as the data set ``TARGET-sim:JET_TYPE`` or ``TARGET-param:FILE``); the CLI and the leaderboard
pipeline both call it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..cache import Cache
from ..registry import default_registry
from .jets import JetSimConfig, simulate_jets
from .showers import LABEL, SHOWER_TARGETS, simulate_showers

__all__ = ["JET_TARGETS", "SHOWER_TARGETS", "Simulated", "simulate"]

#: jet targets: the JetNet layout they follow -> particles per jet
JET_TARGETS = {"jetnet30": 30, "jetnet150": 150}


@dataclass(frozen=True)
class Simulated:
    """A written simulation: the file, how many objects, the master seed, and what they are in words."""

    path: Path
    n: int
    seed: int
    what: str


def simulate(target: str, n: int | None = None, seed: int | None = None, jet_type: str = "g",
             file_key: str | None = None, output: str | os.PathLike[str] | None = None, cache: Cache | None = None,
             workers: int = 1, resume: bool = False, chunk_size: int | None = None,
             progress: bool = True) -> Simulated:
    """Simulate ``target`` (``JET_TARGETS`` or ``SHOWER_TARGETS``) into ``output``, by default the
    cache's file of its data set.  Defaults: jets 20,000, seed 1, chunks of 250; showers 2,000 of
    member ``file_key`` (the first), seed 1 + the member's position, chunks of 100."""
    if target in JET_TARGETS:
        n, seed = n or 20_000, 1 if seed is None else seed
        if output is None:
            entry = default_registry().get(f"{target}-sim")
            output = (cache or Cache()).path(entry, entry.file(jet_type))
        config = JetSimConfig(jet_type=jet_type, num_particles=JET_TARGETS[target])
        path = simulate_jets(n, config, output, seed=seed, workers=workers, resume=resume, chunk_size=chunk_size or 250,
                             progress=progress)
        return Simulated(path, n, seed, f"{jet_type} jets, {config.num_particles} particles each (Pythia 8 + FastJet)")
    if target not in SHOWER_TARGETS:
        raise KeyError(f"unknown simulation target {target!r}; known: {', '.join([*JET_TARGETS, *SHOWER_TARGETS])}")
    n = n or 2000
    entry = default_registry().get(f"{target}-param")
    keys = [f.key for f in entry.files]
    file_key = file_key or keys[0]
    seed = 1 + keys.index(file_key) if seed is None else seed
    output = output or (cache or Cache()).path(entry, entry.file(file_key))
    path = simulate_showers(target, n, output, seed=seed, workers=workers, resume=resume, chunk_size=chunk_size or 100,
                            progress=progress)
    return Simulated(path, n, seed, f"{target} showers: {LABEL}")
