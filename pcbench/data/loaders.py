"""``load(name, split)``: registered data sets from the cache as validated containers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataUnavailableError, RegistryError
from . import formats
from .cache import Cache
from .containers import JetSet, ShowerPointSet, VoxelShowerSet
from .registry import DatasetEntry, FileEntry, Registry, default_registry

__all__ = ["SPLITS", "split_bounds", "split_indices", "split_files", "load", "load_file", "dataset_paths",
           "resolve_files"]

SPLITS = ("train", "valid", "test", "all")


def split_bounds(length: int, split: str, fractions: tuple[float, ...] = (0.7, 0.15, 0.15)) -> tuple[int, int]:
    """[start, stop) of ``split`` in a permuted data set of ``length`` rows, as jetnet 0.2.5 cuts it.

    The cuts are ``floor(cumsum([0, *fractions]) * length)``: for 100 rows, train is 0-70, valid
    70-85, test 85-100.
    """
    if split not in SPLITS:
        raise RegistryError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "all":
        return 0, length
    if sum(fractions) > 1.0 + 1e-12:
        raise RegistryError(f"split fractions {fractions} sum to more than 1")
    cuts = (np.cumsum(np.insert(np.asarray(fractions, dtype=float), 0, 0.0)) * length).astype(int)
    i = SPLITS.index(split)
    return int(cuts[i]), int(cuts[i + 1])


def split_indices(length: int, split: str, fractions: tuple[float, ...] = (0.7, 0.15, 0.15),
                  seed: int = 42) -> np.ndarray:
    """Row indices of ``split``: a permutation from ``np.random.default_rng(seed)``, then cut.

    This is the jetnet library's convention (version 0.2.5), so pcbench's JetNet test split is
    the papers' test split.
    """
    perm = np.random.default_rng(seed).permutation(length)
    lo, hi = split_bounds(length, split, fractions)
    return perm[lo:hi]


def resolve_files(name: str, registry: Registry | None = None) -> tuple[DatasetEntry, tuple[FileEntry, ...]]:
    """``NAME`` or ``NAME:KEY`` resolved to its data set and files; raises, naming what to pass
    instead, for a data set that has no files pcbench can read (a manual download)."""
    entry, files = (registry or default_registry()).resolve(name)
    if not files:
        instead = f"; or use the offline data: {entry.offline}" if entry.offline else ""
        raise RegistryError(f"{entry.name} lists no files pcbench can fetch or read ({entry.source.get('type')} "
                            f"download): pass the downloaded file itself (--data-file FILE / --reference FILE){instead}")
    return entry, files


def dataset_paths(entry: DatasetEntry, files: tuple[FileEntry, ...], cache: Cache) -> list[Path]:
    """Cached paths of ``files``; raises naming the fetch command when one is missing."""
    paths = []
    for f in files:
        p = cache.path(entry, f)
        if not cache.is_cached(entry, f):
            if entry.source.get("type") == "simulate":
                raise DataUnavailableError(f"{entry.name}:{f.key} is not in the cache ({p}); make it with "
                                           f"`{entry.offline_hint(f.key)}`")
            hint = f" or make it offline: {entry.offline_hint(f.key)}" if entry.offline else ""
            raise DataUnavailableError(
                f"{entry.name}:{f.key} is not in the cache ({p}); run `pcbench fetch {entry.name}:{f.key}`{hint}")
        paths.append(p)
    return paths


def split_files(entry: DatasetEntry, files: tuple[FileEntry, ...], split: str, name: str) -> tuple[FileEntry, ...]:
    """The members that hold ``split`` for data sets split by file (CaloChallenge: train and test
    files); all members otherwise (their split is cut after loading)."""
    if entry.split.get("convention") != "files" or split == "all":
        return files
    if split not in ("train", "test"):
        raise RegistryError(f"{entry.name} defines only the splits train and test (by file), not {split!r}")
    chosen = tuple(f for f in files if f.split == split)
    if not chosen:
        raise RegistryError(f"{name} has no {split} file")
    return chosen


def _concat(parts: list[JetSet | VoxelShowerSet | ShowerPointSet]):
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, JetSet):
        return JetSet(*(np.concatenate([getattr(p, a) for p in parts]) for a in ("particles", "mask", "jets", "jet_type")),
                      attrs=dict(first.attrs))
    if isinstance(first, VoxelShowerSet):
        return VoxelShowerSet(np.concatenate([p.voxels for p in parts]),
                              np.concatenate([p.incident_energy for p in parts]), first.geometry, dict(first.attrs))
    width = max(p.points.shape[1] for p in parts)

    def widen(a: np.ndarray) -> np.ndarray:  # zero-pad the point axis to the widest file
        return np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2))

    return ShowerPointSet(np.concatenate([widen(p.points) for p in parts]),
                          np.concatenate([widen(p.mask) for p in parts]),
                          np.concatenate([p.incident_energy for p in parts]), dict(first.attrs))


def load_file(path: str | os.PathLike[str]):
    """Any file in a layout pcbench reads, as its container (no splitting)."""
    return formats.read(path)


def load(name: str, split: str = "train", cache: Cache | None = None, registry: Registry | None = None,
         num_particles: int | None = None):
    """A registered data set (``NAME`` or ``NAME:KEY``) from the cache, as a validated container.

    Splits: JetNet uses jetnet's seeded 70/15/15 permutation over the concatenated files (in
    registry order); CaloChallenge uses its files' roles (``train`` files, ``test`` = the
    evaluation files; ``valid`` is not defined there); ``all`` is everything.

    Args:
        num_particles: for jets, keep the leading ``num_particles`` slots (and clip the jets'
            ``num_particles`` feature accordingly, as jetnet does).
    """
    cache = cache or Cache()
    entry, files = resolve_files(name, registry)
    files = split_files(entry, files, split, name)
    parts = [formats.read(p) for p in dataset_paths(entry, files, cache)]
    data = _concat(parts)
    if isinstance(data, JetSet) and num_particles is not None:
        jets = data.jets.copy()
        jets[:, 3] = np.minimum(jets[:, 3], num_particles)
        data = JetSet(data.particles[:, :num_particles], data.mask[:, :num_particles], jets, data.jet_type, data.attrs)
    if entry.split.get("convention") == "jetnet":
        fr = tuple(entry.split.get("fractions", (0.7, 0.15, 0.15)))
        data = data.subset(split_indices(len(data), split, fr, int(entry.split.get("seed", 42))))
    data.attrs.update({"dataset": name, "split": split})
    return data
