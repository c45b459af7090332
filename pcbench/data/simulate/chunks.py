"""Deterministic, resumable, multi-process execution of a simulation in fixed-size chunks.

The work is cut into chunks of ``chunk_size`` objects whose seeds derive from the master seed
and the chunk index alone (``numpy.random.SeedSequence(seed).spawn``), so the output is the
same, byte for byte, whatever the number of worker processes.  Each finished chunk is saved
(atomically) under a work directory; an interrupted run started again with ``resume=True``
skips the chunks already there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ..._io import atomic_path

__all__ = ["chunk_seeds", "run_chunks", "run_chunk_files", "load_chunk", "settings_digest"]

#: A chunk maker: (seed, number of objects) -> arrays with that many rows.
ChunkFn = Callable[[int, int], dict[str, np.ndarray]]

_MAX_SEED = 900_000_000  # Pythia 8 accepts seeds in [1, 900000000]


def chunk_seeds(seed: int, n_chunks: int) -> list[int]:
    """Independent seeds in [1, 9e8] for chunks 0..n_chunks-1, a function of (seed, index) only."""
    children = np.random.SeedSequence(seed).spawn(n_chunks)
    return [int(c.generate_state(1, dtype=np.uint64)[0] % _MAX_SEED) + 1 for c in children]


def settings_digest(settings: dict[str, Any]) -> str:
    """A short hash of the settings that determine the output (to refuse resuming other runs)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _save_chunk(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_chunk(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A saved chunk's arrays (only ``keys``, if given)."""
    with np.load(path) as z:
        return {k: z[k] for k in (keys or z.files)}


def run_chunks(fn: ChunkFn, n_total: int, seed: int, work_dir: Path, settings: dict[str, Any],
               chunk_size: int = 250, workers: int = 1, resume: bool = False,
               description: str = "simulating", progress: bool = True) -> dict[str, np.ndarray]:
    """``run_chunk_files``, then the chunks' arrays concatenated (``n_total`` rows)."""
    parts = [load_chunk(p) for p in run_chunk_files(fn, n_total, seed, work_dir, settings, chunk_size, workers,
                                                    resume, description, progress)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run_chunk_files(fn: ChunkFn, n_total: int, seed: int, work_dir: Path, settings: dict[str, Any],
                    chunk_size: int = 250, workers: int = 1, resume: bool = False,
                    description: str = "simulating", progress: bool = True) -> list[Path]:
    """Run ``fn`` over all chunks, each saved to ``work_dir`` as it finishes; returns their files
    in order (``load_chunk`` reads one).

    Args:
        fn: picklable chunk maker (a module-level function or a ``functools.partial`` of one).
        n_total: objects wanted in total.
        seed: master seed.
        work_dir: where finished chunks are kept until the caller removes them.
        settings: everything that determines the output; resuming with other settings is refused.
        chunk_size: objects per chunk (part of the settings: it changes the seeds).
        workers: processes; 1 runs in this process.
        resume: keep the chunks a previous run with the same settings left in ``work_dir``.
    """
    if n_total <= 0:
        raise ValueError(f"the number of objects must be positive, got {n_total}")
    n_chunks = -(-n_total // chunk_size)
    sizes = [min(chunk_size, n_total - i * chunk_size) for i in range(n_chunks)]
    seeds = chunk_seeds(seed, n_chunks)
    digest = settings_digest({**settings, "seed": seed, "chunk_size": chunk_size})
    stamp = work_dir / "settings.json"
    if work_dir.exists():
        same = stamp.exists() and json.loads(stamp.read_text()).get("digest") == digest
        if not (resume and same):
            shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"digest": digest, "settings": settings, "seed": seed}, sort_keys=True))
    paths = [work_dir / f"chunk_{i:05d}_{sizes[i]}.npz" for i in range(n_chunks)]
    todo = [i for i in range(n_chunks) if not paths[i].exists()]

    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TimeRemainingColumn())
        bar.start()
        task = bar.add_task(description, total=n_total, completed=sum(sizes[i] for i in range(n_chunks) if i not in todo))
    try:
        if workers <= 1:
            for i in todo:
                _save_chunk(paths[i], fn(seeds[i], sizes[i]))
                if bar:
                    bar.advance(task, sizes[i])
        elif todo:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(fn, seeds[i], sizes[i]): i for i in todo}
                for fut in as_completed(futures):
                    i = futures[fut]
                    _save_chunk(paths[i], fut.result())
                    if bar:
                        bar.advance(task, sizes[i])
    finally:
        if bar:
            bar.stop()
    return paths
