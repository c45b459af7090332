"""Offline data: simulators that write files in the layouts of the public data sets."""

from .chunks import chunk_seeds, run_chunks
from .jets import JetSimConfig, simulate_jets

__all__ = ["chunk_seeds", "run_chunks", "JetSimConfig", "simulate_jets"]
