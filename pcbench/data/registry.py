"""The data-set registry: what ``datasets.yaml`` says about every public data set.

A name on the command line is ``DATASET`` (all its files) or ``DATASET:KEY`` (one file), e.g.
``jetnet30``, ``jetnet30:g``, ``calochallenge-3:4``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import RegistryError

__all__ = [
    "FileEntry",
    "DatasetEntry",
    "Registry",
    "default_registry",
    "KINDS",
]

#: The kinds of data pcbench knows; each has one container and one sample-file schema
#: (``generator-weights``: released generator weights, read by :mod:`pcbench.models.jets.mpgan_release`).
KINDS = ("jets", "point-showers", "voxel-showers", "generator-weights")


@dataclass(frozen=True)
class FileEntry:
    """One downloadable file of a data set.

    Attributes:
        key: member key (``g``, ``"1"``...), what follows the colon in ``NAME:KEY``.
        name: file name, identical on every mirror.
        url: canonical download URL.
        md5: published md5 hex digest, or ``None`` when none is published.
        size: size in bytes, or ``None`` when unknown.
        split: ``train`` or ``test`` for data sets split by file, else ``None``.
        jet_type: for jet data sets, the jet class (``g``, ``q``, ``t``, ``w``, ``z``).
    """

    key: str
    name: str
    url: str
    md5: str | None = None
    size: int | None = None
    split: str | None = None
    jet_type: str | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """One registered data set (see ``datasets.yaml`` for the meaning of each field)."""

    name: str
    title: str
    kind: str
    format: str
    source: dict[str, Any]
    split: dict[str, Any]
    citation: str
    licence: str
    files: tuple[FileEntry, ...] = ()
    offline: str | None = None
    geometry: str | None = None
    num_particles: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def downloadable(self) -> bool:
        """True when the files can be fetched automatically."""
        return bool(self.files) and self.source.get("type") not in ("manual", "simulate")

    @property
    def total_size(self) -> int | None:
        """Sum of the file sizes in bytes, ``None`` if any is unknown."""
        sizes = [f.size for f in self.files]
        return None if not sizes or any(s is None for s in sizes) else sum(sizes)  # type: ignore[arg-type]

    def file(self, key: str) -> FileEntry:
        """The member ``key``; raises :class:`RegistryError` naming the valid keys."""
        for f in self.files:
            if f.key == key:
                return f
        valid = ", ".join(f.key for f in self.files) or "none"
        raise RegistryError(f"data set {self.name!r} has no member {key!r} (members: {valid})")

    def offline_hint(self, key: str | None = None) -> str | None:
        """The command that makes an offline equivalent of member ``key``, if pcbench has one."""
        if not self.offline:
            return None
        return self.offline.format(key=key or (self.files[0].key if self.files else ""))


_REQUIRED = ("title", "kind", "format", "source", "split", "citation", "licence", "files")
_FILE_FIELDS = {"name", "url", "md5", "size", "split", "jet_type"}


def _parse_entry(name: str, raw: dict[str, Any], origin: str) -> DatasetEntry:
    where = f"{origin}: datasets.{name}"
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: expected a mapping, got {type(raw).__name__}")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise RegistryError(f"{where}: missing field(s) {', '.join(missing)}")
    if raw["kind"] not in KINDS:
        raise RegistryError(f"{where}.kind: expected one of {KINDS}, got {raw['kind']!r}")
    files = []
    for key, fraw in (raw["files"] or {}).items():
        fwhere = f"{where}.files.{key}"
        needs_url = raw["source"].get("type") != "simulate"
        if not isinstance(fraw, dict) or "name" not in fraw or (needs_url and "url" not in fraw):
            raise RegistryError(f"{fwhere}: expected a mapping with at least 'name' and 'url'")
        unknown = set(fraw) - _FILE_FIELDS
        if unknown:
            raise RegistryError(f"{fwhere}: unknown field(s) {', '.join(sorted(unknown))}")
        md5 = fraw.get("md5")
        if md5 is not None and (len(str(md5)) != 32 or any(c not in "0123456789abcdef" for c in str(md5))):
            raise RegistryError(f"{fwhere}.md5: expected 32 lower-case hex digits or null, got {md5!r}")
        size = fraw.get("size")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise RegistryError(f"{fwhere}.size: expected a non-negative integer or null, got {size!r}")
        files.append(
            FileEntry(
                key=str(key),
                name=str(fraw["name"]),
                url=str(fraw.get("url") or ""),
                md5=md5,
                size=size,
                split=fraw.get("split"),
                jet_type=fraw.get("jet_type"),
            )
        )
    known = set(_REQUIRED) | {"offline", "geometry", "num_particles"}
    return DatasetEntry(
        name=name,
        title=raw["title"],
        kind=raw["kind"],
        format=raw["format"],
        source=dict(raw["source"]),
        split=dict(raw["split"]),
        citation=raw["citation"],
        licence=raw["licence"],
        files=tuple(files),
        offline=raw.get("offline"),
        geometry=raw.get("geometry"),
        num_particles=raw.get("num_particles"),
        extra={k: v for k, v in raw.items() if k not in known},
    )


class Registry:
    """All registered data sets, by name, in file order."""

    def __init__(self, datasets: dict[str, DatasetEntry]):
        self.datasets = dict(datasets)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Registry:
        """Parse a registry file; errors name the file and the offending field."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise RegistryError(f"{path}: cannot read the registry: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("schema") != 1 or not isinstance(raw.get("datasets"), dict):
            raise RegistryError(f"{path}: expected 'schema: 1' and a 'datasets' mapping")
        return cls({n: _parse_entry(n, e, str(path)) for n, e in raw["datasets"].items()})

    def __iter__(self):
        return iter(self.datasets.values())

    def __len__(self) -> int:
        return len(self.datasets)

    def __contains__(self, name: str) -> bool:
        return name in self.datasets

    def get(self, name: str) -> DatasetEntry:
        """The data set ``name`` (without member); the error lists the known names."""
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(self.datasets)
            raise RegistryError(f"unknown data set {name!r}; known: {known}") from None

    def resolve(self, spec: str) -> tuple[DatasetEntry, tuple[FileEntry, ...]]:
        """Resolve ``NAME`` or ``NAME:KEY`` to its data set and the files it denotes (``KEY`` also
        denotes its companion members ``KEY/...``, e.g. a generator's ``args``)."""
        name, _, key = spec.partition(":")
        entry = self.get(name)
        files = (entry.file(key), *(f for f in entry.files if f.key.startswith(key + "/"))) if key else entry.files
        return entry, files


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry shipped with pcbench (``datasets.yaml``); ``PCBENCH_REGISTRY`` overrides it."""
    override = os.environ.get("PCBENCH_REGISTRY")
    if override:
        return Registry.from_yaml(override)
    with resources.as_file(resources.files("pcbench.data") / "datasets.yaml") as path:
        return Registry.from_yaml(path)
