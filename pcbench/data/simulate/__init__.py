"""Offline data: simulators that write files in the layouts of the public data sets; ``simulate``
is the one entry point (defaults, cache paths) for every target."""

from .chunks import chunk_seeds, run_chunks
from .jets import JetSimConfig, simulate_jets
from .targets import JET_TARGETS, SHOWER_TARGETS, Simulated, simulate

__all__ = ["chunk_seeds", "run_chunks", "JetSimConfig", "simulate_jets", "JET_TARGETS", "SHOWER_TARGETS", "Simulated",
           "simulate"]
