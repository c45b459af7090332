"""Resolve ``--reference``: a registry name (its test split) or the path of a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._io import file_md5
from ..data import Cache, default_registry, load, read
from ..data.loaders import dataset_paths

__all__ = ["load_reference"]


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
