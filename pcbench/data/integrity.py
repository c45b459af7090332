"""What a downloaded file must be before it enters the cache, and how far it can be trusted.

A file with a published md5 is verified by it.  For a file without one (JetNet), a truncated or
wrong file from a mirror must still be refused: :func:`layout_problem` opens it as the layout its
data set claims (``datasets.yaml``'s ``format``) and checks the datasets, their shapes, equal row
counts, and that the first and last rows can be read (a cut file fails here: HDF5 checks the
end-of-file address, and the last rows lie at the end).  :func:`trust` says in words what the
cached copy was verified against (``pcbench fetch`` and ``pcbench datasets`` print it).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import h5py

from ..errors import FormatError
from .checks import shape_problem
from .formats import detect_layout
from .registry import DatasetEntry, FileEntry

__all__ = ["FORMAT_LAYOUTS", "layout_problem", "trust", "is_verified"]

#: The layout (``formats.LAYOUTS``) each registry ``format`` names.
FORMAT_LAYOUTS = {"jetnet-hdf5": "jetnet", "calochallenge-hdf5": "calochallenge", "ild-hdf5": "ild"}


def _expected_shapes(entry: DatasetEntry, layout: str) -> dict[str, tuple[tuple[int | None, ...], str]]:
    """Per dataset of the layout: the shape after the row axis (None = any) and its description."""
    if layout == "jetnet":
        p = entry.num_particles
        return {"particle_features": ((p, 4), f"(N, {p or 'P'}, 4) = (etarel, phirel, ptrel, mask)"),
                "jet_features": ((4,), "(N, 4) = (pt, eta, mass, num_particles)")}
    if layout == "calochallenge":
        from ..geometry import get_geometry

        v = get_geometry(entry.geometry).n_cells if entry.geometry else None
        return {"incident_energies": ((1,), "(N, 1) [MeV]"), "showers": ((v,), f"(N, {v or 'V'}) [MeV]")}
    return {"events": ((4, None), "(N, 4, P) = (x, y, z, E)"), "energy": ((1,), "(N, 1) [GeV]")}


def layout_problem(path: str | os.PathLike[str], entry: DatasetEntry) -> str | None:
    """Why ``path`` is not a complete file in the layout of ``entry``, or None if it is one.

    Formats pcbench does not read are not checked (None).
    """
    want = FORMAT_LAYOUTS.get(entry.format)
    if want is None:
        return None
    try:
        with h5py.File(path, "r") as f:
            layout = detect_layout(f)
            if layout.name != want:
                return f"it is in the {layout.name} layout, not the {want} layout of {entry.format}"
            for name, (tail, text) in _expected_shapes(entry, want).items():
                shape = f[name].shape
                ok = len(shape) == 1 + len(tail) and all(t is None or s == t for s, t in zip(shape[1:], tail))
                if not ok:
                    return str(shape_problem(name, shape, text, ok)[0])
            rows = {k: f[k].shape[0] for k in layout.keys}
            if len(set(rows.values())) > 1 or 0 in rows.values():
                return f"row counts {rows}: expected the same number of rows, at least 1, in each dataset"
            n = rows[layout.keys[0]]
            for k in layout.keys:  # the last rows lie at the end of the file: a cut file fails here
                f[k][0], f[k][n - 1]
    except FormatError as exc:
        return str(exc).removeprefix(f"{path}: ")
    except (OSError, KeyError, ValueError, TypeError) as exc:
        return f"not a complete, readable HDF5 file ({type(exc).__name__}: {exc})"
    return None


def is_verified(f: FileEntry, pin: dict[str, Any] | None) -> bool:
    """True when the file's md5 was published (in the registry, or by Zenodo's records API)."""
    return bool(f.md5) or (pin or {}).get("source") == "zenodo-api"


def trust(f: FileEntry, pin: dict[str, Any] | None, since: float | None = None) -> str:
    """What the cached copy of ``f`` is verified against, in words.

    Args:
        pin: the cache's pin of the file (``Cache.pinned``), or None.
        since: a POSIX time; a pin made at or after it is reported as "pinned now".
    """
    if f.md5:
        return "verified (md5 published in the registry)"
    if pin is None:
        return "unverified (no published checksum; no md5 pinned yet)"
    stamp = str(pin.get("pinned_at", ""))
    try:
        now = since is not None and datetime.fromisoformat(stamp).timestamp() >= int(since)
    except ValueError:
        now = False
    when = "now" if now else f"on {stamp[:10] or 'an unknown date'}"
    if pin.get("source") == "zenodo-api":
        return f"verified (md5 from Zenodo's records API, pinned {when})"
    return f"unverified (no published checksum; md5 pinned {when})"
