"""Shower samples in files (or memory), read chunk by chunk: every shower consumer streams them
with bounded memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from . import formats
from .containers import ShowerPointSet, VoxelShowerSet

__all__ = ["ShowerSource", "Showers"]

Showers = ShowerPointSet | VoxelShowerSet


@dataclass
class ShowerSource:
    """Showers in one or more files (concatenated in order), or already in memory."""

    paths: list[Path] = field(default_factory=list)
    data: Showers | None = None

    @classmethod
    def of(cls, x: str | os.PathLike[str] | list[Path] | Showers) -> ShowerSource:
        if isinstance(x, (ShowerPointSet, VoxelShowerSet)):
            return cls(data=x)
        return cls(paths=[Path(p) for p in (x if isinstance(x, list) else [x])])

    @cached_property
    def lengths(self) -> list[int]:
        """Rows per file (read once from the files' headers)."""
        if self.data is not None:
            return [len(self.data)]
        out = []
        for p in self.paths:
            with h5py.File(p, "r") as f:
                out.append(len(f[formats.detect_layout(f).keys[0]]))
        return out

    def __len__(self) -> int:
        return sum(self.lengths)

    def incident_energies(self) -> np.ndarray:
        """(N,) [MeV], without reading the showers."""
        if self.data is not None:
            return np.asarray(self.data.incident_energy, np.float64)
        parts = []
        for p in self.paths:
            with h5py.File(p, "r") as f:
                lay = formats.detect_layout(f)
                parts.append(np.asarray(f[lay.energy_key][:], np.float64).reshape(-1) * lay.energy_to_mev)
        return np.concatenate(parts)

    def chunks(self, chunk_rows: int) -> Iterator[tuple[int, Showers]]:
        """(first row, container of the next ``chunk_rows`` rows), in order."""
        if self.data is not None:
            for a in range(0, len(self.data), chunk_rows):
                yield a, self.data.subset(slice(a, a + chunk_rows))
            return
        offset = 0
        for p, n in zip(self.paths, self.lengths):
            for a in range(0, n, chunk_rows):
                yield offset + a, formats.read(p, slice(a, min(a + chunk_rows, n)))
            offset += n

    def select(self, row_sets: dict[str, np.ndarray], chunk_rows: int,
               on_chunk: Callable[[], None] | None = None) -> Iterator[tuple[str, np.ndarray, Showers]]:
        """One pass over the showers for several sets of (sorted) rows: per chunk and set,
        ``(key, positions of the set's rows within the chunk, chunk)``; a file is read once, however
        many sets it serves.  ``on_chunk`` is called after each chunk (progress)."""
        for start, chunk in self.chunks(chunk_rows):
            for key, rows in row_sets.items():
                sel = rows[(rows >= start) & (rows < start + len(chunk))] - start
                if len(sel):
                    yield key, sel, chunk
            if on_chunk is not None:
                on_chunk()

    def n_chunks(self, chunk_rows: int) -> int:
        """How many chunks of ``chunk_rows`` a pass reads (files are chunked one by one)."""
        return sum(-(-n // chunk_rows) for n in self.lengths)
