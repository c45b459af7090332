"""Resolve ``--reference``: a registry name (its test split) or the path of a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._io import file_md5
from ..data import Cache, load, read
from ..data.loaders import dataset_paths, resolve_files, split_files
from ..data.sources import ShowerSource

__all__ = ["load_reference", "reference_source", "truth_split"]


def _file_info(path: Path) -> dict[str, Any]:
    return {"reference": str(path), "reference_split": "file", "reference_md5": file_md5(path)}


def _registered(reference: str, cache: Cache | None, split: str):
    """(entry, files, the split to use, cache) of a registered data set: ``split``, or all of a
    data set that has no splits."""
    entry, files = resolve_files(reference)
    return entry, files, split if entry.split.get("convention") != "none" else "all", cache or Cache()


def _registry_info(reference: str, split: str, paths: list[Path]) -> dict[str, Any]:
    return {"reference": reference, "reference_split": split, "reference_md5": {p.name: file_md5(p) for p in paths}}


def truth_split(reference: str, truth: str) -> tuple[str, str] | None:
    """(registry name, split) of the truth sample for ``--truth auto`` and a registered reference:
    the training split (JetNet: jetnet's train split of the same class) or the training files
    (CaloChallenge: as its Geant4 row), disjoint from the test split; None where the truth sample
    is a file or the reference's halves."""
    if truth != "auto" or Path(reference).exists():
        return None
    from ..data import default_registry

    entry = default_registry().resolve(reference)[0]
    convention = entry.split.get("convention", "none")
    if convention == "none":
        return None
    return (entry.name if convention == "files" else reference), "train"


def load_reference(reference: str, cache: Cache | None = None, split: str = "test") -> tuple[Any, dict[str, Any]]:
    """The reference container and its provenance (name, split, files and their md5).

    A path that exists is read whole; otherwise ``reference`` is a registered name whose
    ``split`` (the papers' test split by default) is loaded from the cache.
    """
    path = Path(reference)
    if path.exists():
        return read(path), _file_info(path)
    entry, files, use_split, cache = _registered(reference, cache, split)
    return load(reference, use_split, cache), _registry_info(reference, use_split, dataset_paths(entry, files, cache))


def reference_source(reference: str, cache: Cache | None = None, split: str = "test") -> tuple[ShowerSource, dict[str, Any], str | None]:
    """A shower reference to stream (nothing is read yet), its provenance and its geometry name.

    A path that exists is used as it is; a registered name gives its ``split`` files (the
    evaluation files for CaloChallenge-style data sets).  Data sets split by permutation are
    loaded and cut first.
    """
    path = Path(reference)
    if path.exists():
        return ShowerSource.of(path), _file_info(path), None
    entry, files, use_split, cache = _registered(reference, cache, split)
    if entry.split.get("convention") in ("files", "none"):
        paths = dataset_paths(entry, split_files(entry, files, use_split, reference), cache)
        source = ShowerSource.of(paths)
    else:
        paths = dataset_paths(entry, files, cache)
        source = ShowerSource.of(load(reference, use_split, cache))
    return source, _registry_info(reference, use_split, paths), entry.geometry
