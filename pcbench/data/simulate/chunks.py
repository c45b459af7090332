"""Deterministic, resumable, multi-process execution of a simulation in fixed-size chunks.

The work is cut into chunks of ``chunk_size`` objects whose seeds derive from the master seed
and the chunk index alone (``numpy.random.SeedSequence(seed).spawn``), so the output is the
same, byte for byte, whatever the number of worker processes.  Each finished chunk is saved
(atomically) under a work directory; an interrupted run started again with ``resume=True``
skips the chunks already there.  The work directory holds a manifest (``settings.json``: the
settings, seed, chunk size and pcbench version); resuming with other values is refused with an
error naming each one that differs, never silently mixed.  :func:`output_run` holds the run lock
of an output file and its chunk folder, so that two runs into one output cannot mix either.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ..._io import atomic_path, atomic_write_text
from ...errors import PcbenchError
from ..workfiles import run_lock, sweep

__all__ = ["chunk_seeds", "run_chunks", "run_chunk_files", "load_chunk", "output_run",
           "ResumeMismatchError", "MANIFEST"]

#: The manifest of a chunk folder: what its chunks were made with.
MANIFEST = "settings.json"

#: The command-line option of a setting, for the error message.
_OPTIONS = {"seed": "--seed", "chunk_size": "--chunk-size", "n": "-n", "jet_type": "--jet-type", "target": "TARGET"}


class ResumeMismatchError(PcbenchError):
    """``--resume`` found chunks made with other settings (or without a readable manifest)."""


#: A chunk maker: (seed, number of objects) -> arrays with that many rows.
ChunkFn = Callable[[int, int], dict[str, np.ndarray]]

_MAX_SEED = 900_000_000  # Pythia 8 accepts seeds in [1, 900000000]


def chunk_seeds(seed: int, n_chunks: int) -> list[int]:
    """Independent seeds in [1, 9e8] for chunks 0..n_chunks-1, a function of (seed, index) only."""
    children = np.random.SeedSequence(seed).spawn(n_chunks)
    return [int(c.generate_state(1, dtype=np.uint64)[0] % _MAX_SEED) + 1 for c in children]


def _save_chunk(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_chunk(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A saved chunk's arrays (only ``keys``, if given)."""
    with np.load(path) as z:
        return {k: z[k] for k in (keys or z.files)}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"a.b": value}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _differences(kept: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """'name (option): chunks X, this run Y' for every setting that differs."""
    a, b = _flat(kept), _flat(wanted)
    out = []
    for key in sorted(set(a) | set(b), key=lambda k: (k.split(".")[-1] not in _OPTIONS, k)):
        if a.get(key, "not recorded") != b.get(key, "not recorded"):
            name = key.removeprefix("settings.")
            option = _OPTIONS.get(name)
            out.append(f"{name}{f' ({option})' if option else ''}: chunks {a.get(key, 'not recorded')!r}, "
                       f"this run {b.get(key, 'not recorded')!r}")
    return out


def _prepare_work_dir(work_dir: Path, manifest: dict[str, Any], resume: bool) -> None:
    """Make ``work_dir`` ready: keep its chunks only if ``resume`` and its manifest matches
    ``manifest`` (else refuse, naming the settings that differ); without ``resume`` start afresh."""
    manifest = json.loads(json.dumps(manifest))  # tuples -> lists, as read back from the file
    stamp = work_dir / MANIFEST
    if work_dir.exists() and resume and any(work_dir.glob("chunk_*.npz")):
        try:
            kept = json.loads(stamp.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ResumeMismatchError(
                f"--resume: cannot read {stamp} ({type(exc).__name__}), so the chunks in {work_dir} cannot be "
                "checked; run without --resume to discard them and start again") from None
        diffs = _differences({k: kept.get(k, "not recorded") for k in manifest}, manifest)
        if diffs:
            raise ResumeMismatchError(
                f"--resume: the chunks in {work_dir} were made with other settings: {'; '.join(diffs)}; "
                "resume with their settings, or run without --resume to discard them")
        for tmp in work_dir.glob(".*.tmp"):  # a chunk being written when the run was killed
            tmp.unlink(missing_ok=True)
    elif work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def output_run(out: Path) -> Iterator[Path]:
    """Hold the run lock of the output file ``out`` and of its chunk folder ``<out>.chunks/`` for
    one run, after removing the temporary files a killed run left beside ``out``; yields the chunk
    folder.  A second run into the same output is refused at once with a
    :class:`~pcbench.data.workfiles.RunLockedError` naming ``out``, before it touches anything."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PcbenchError(f"cannot write {out}: cannot make its folder ({exc.strerror})") from None
    with run_lock(out, hint="wait for it to finish, or pass another -o"):
        sweep(out)
        yield out.with_name(out.name + ".chunks")


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
        resume: keep the chunks a previous run left in ``work_dir``; they must have been made with
            the same settings, seed and chunk size (else :class:`ResumeMismatchError`).
    """
    if n_total <= 0:
        raise ValueError(f"the number of objects must be positive, got {n_total}")
    n_chunks = -(-n_total // chunk_size)
    sizes = [min(chunk_size, n_total - i * chunk_size) for i in range(n_chunks)]
    seeds = chunk_seeds(seed, n_chunks)
    _prepare_work_dir(work_dir, {"settings": settings, "seed": seed, "chunk_size": chunk_size,
                                 "pcbench_version": __version__}, resume)
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
