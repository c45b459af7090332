"""Resolve ``--reference``: a registry name (its test split) or the path of a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._io import file_md5
from ..data import Cache, default_registry, load, read
from ..data.loaders import dataset_paths, split_files
from .sources import ShowerSource

__all__ = ["load_reference", "reference_source"]


def load_reference(reference: str, cache: Cache | None = None, split: str = "test") -> tuple[Any, dict[str, Any]]:
    """The reference container and its provenance (name, split, files and their md5).

    A path that exists is read whole; otherwise ``reference`` is a registered name whose
    ``split`` (the papers' test split by default) is loaded from the cache.
    """
    path = Path(reference)
    if path.exists():
        data = read(path)
        return data, {"reference": str(path), "reference_split": "file", "reference_md5": file_md5(path)}
    cache = cache or Cache()
    registry = default_registry()
    entry, files = registry.resolve(reference)
    use_split = split if entry.split.get("convention") != "none" else "all"
    data = load(reference, use_split, cache)
    md5s = {p.name: file_md5(p) for p in dataset_paths(entry, files, cache)}
    return data, {"reference": reference, "reference_split": use_split, "reference_md5": md5s}


def reference_source(reference: str, cache: Cache | None = None, split: str = "test") -> tuple[ShowerSource, dict[str, Any], str | None]:
    """A shower reference to stream (nothing is read yet), its provenance and its geometry name.

    A path that exists is used as it is; a registered name gives its ``split`` files (the
    evaluation files for CaloChallenge-style data sets).  Data sets split by permutation are
    loaded and cut first.
    """
    path = Path(reference)
    if path.exists():
        return ShowerSource.of(path), {"reference": str(path), "reference_split": "file",
                                       "reference_md5": file_md5(path)}, None
    cache = cache or Cache()
    entry, files = default_registry().resolve(reference)
    convention = entry.split.get("convention")
    use_split = split if convention != "none" else "all"
    if convention in ("files", "none"):
        paths = dataset_paths(entry, split_files(entry, files, use_split, reference), cache)
        source = ShowerSource.of(paths)
    else:
        paths = dataset_paths(entry, files, cache)
        source = ShowerSource.of(load(reference, use_split, cache))
    return source, {"reference": reference, "reference_split": use_split,
                    "reference_md5": {p.name: file_md5(p) for p in paths}}, entry.geometry
