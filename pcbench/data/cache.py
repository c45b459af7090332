"""The local data cache: where fetched files live, and the checksums pinned on first download.

Layout: ``<cache>/<dataset>/<file name>``; ``<cache>/checksums.json`` holds, for files whose
registry entry publishes no md5, the md5 and size seen on the first complete download
("trust on first use"), so that every later use is verified against it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import platformdirs

from .._io import atomic_write_text
from .registry import DatasetEntry, FileEntry
from .workfiles import remove_if_unlocked, run_lock, sweep

__all__ = ["Cache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$PCBENCH_CACHE`` if set, else the per-user cache directory (e.g. ``~/.cache/pcbench``)."""
    env = os.environ.get("PCBENCH_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("pcbench"))


class Cache:
    """A cache directory; ``Cache()`` uses :func:`default_cache_dir`."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, dataset: DatasetEntry, f: FileEntry) -> Path:
        """Where the file ``f`` of ``dataset`` lives once fetched."""
        return self.root / dataset.name / f.name

    def is_cached(self, dataset: DatasetEntry, f: FileEntry) -> bool:
        """True if the file is present with the expected size (no hashing: cheap)."""
        p = self.path(dataset, f)
        if not p.is_file():
            return False
        size = f.size if f.size is not None else (self.pinned(dataset, f) or {}).get("size")
        return size is None or p.stat().st_size == size

    # -- checksums pinned on first use -------------------------------------------------------
    @property
    def _pins_path(self) -> Path:
        return self.root / "checksums.json"

    def _read_pins(self) -> dict[str, Any]:
        try:
            return json.loads(self._pins_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    @contextlib.contextmanager
    def _pins_lock(self) -> Iterator[None]:
        """Hold the lock of ``checksums.json``; remove what runs killed while writing it left."""
        with run_lock(self._pins_path, timeout=600.0, hint="another process is recording a checksum"):
            sweep(self._pins_path)
            remove_if_unlocked(self._pins_path.with_name(self._pins_path.name + ".lock"))  # an older pcbench's
            yield

    def sweep(self) -> None:
        """Remove the temporary and lock files that killed runs left beside ``checksums.json``."""
        if self.root.is_dir():
            with self._pins_lock():
                pass

    def pinned(self, dataset: DatasetEntry, f: FileEntry) -> dict[str, Any] | None:
        """The pin ``{"md5", "size", "source", "pinned_at"}`` of a file, or ``None``."""
        return self._read_pins().get(f"{dataset.name}/{f.name}")

    def pin(self, dataset: DatasetEntry, f: FileEntry, md5: str, size: int, source: str) -> None:
        """Record the md5 and size of a file (atomically, under a lock that leaves no file)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._pins_lock():
            pins = self._read_pins()
            pins[f"{dataset.name}/{f.name}"] = {
                "md5": md5,
                "size": size,
                "source": source,
                "pinned_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            atomic_write_text(self._pins_path, json.dumps(pins, indent=1, sort_keys=True) + "\n")
