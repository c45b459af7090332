"""HDF5 layouts pcbench reads and the versioned sample-file schema it writes (``docs/formats.md``).

Layouts read:

=================  ===============  =========================================================
layout             kind             datasets
=================  ===============  =========================================================
``jetnet``         jets             ``particle_features`` (N, P, 4), ``jet_features`` (N, 4)
``calochallenge``  voxel-showers    ``incident_energies`` (N, 1) MeV, ``showers`` (N, V) MeV
``ild``            point-showers    ``events`` (N, 4, P) x, y [layer or mm], z, E [GeV];
                                    ``energy`` (N, 1) GeV
``pcbench-points`` point-showers    ``points`` (N, P, 4) x, y, z [mm], E [MeV];
                                    ``incident_energies`` (N, 1) MeV
=================  ===============  =========================================================

pcbench writes jets in the JetNet layout and voxel showers in the CaloChallenge layout (so that
its files are valid inputs to the reference code), point showers in ``pcbench-points``; every
file it writes carries the attributes ``pcbench_kind`` and ``pcbench_schema`` plus provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._io import atomic_path
from ..errors import FormatError
from .containers import JET_TYPES, JetSet, ShowerPointSet, VoxelShowerSet

__all__ = [
    "SCHEMA_VERSION",
    "LAYOUTS",
    "Layout",
    "detect_layout",
    "data_md5",
    "read_raw",
    "iter_raw",
    "read",
    "write",
    "write_showers",
    "read_attrs",
]

#: Version of the sample-file schema written by this pcbench (``pcbench_schema`` attribute).
SCHEMA_VERSION = 1

Container = JetSet | ShowerPointSet | VoxelShowerSet


@dataclass(frozen=True)
class Layout:
    """A known HDF5 layout: its name, the kind of data and the datasets it requires; for showers,
    the incident-energy dataset and the factor to MeV."""

    name: str
    kind: str
    keys: tuple[str, ...]
    shapes: tuple[str, ...]
    energy_key: str | None = None
    energy_to_mev: float = 1.0


LAYOUTS = (
    Layout("jetnet", "jets", ("particle_features", "jet_features"),
           ("(N, P, 4) = (etarel, phirel, ptrel, mask)", "(N, 4) = (pt, eta, mass, num_particles)")),
    Layout("calochallenge", "voxel-showers", ("incident_energies", "showers"), ("(N, 1) [MeV]", "(N, V) [MeV]"),
           "incident_energies"),
    Layout("pcbench-points", "point-showers", ("points", "incident_energies"),
           ("(N, P, 4) = (x, y, z [mm], E [MeV])", "(N, 1) [MeV]"), "incident_energies"),
    Layout("ild", "point-showers", ("events", "energy"), ("(N, 4, P) = (x, y, z, E [GeV])", "(N, 1) [GeV]"),
           "energy", 1000.0),
)


def _open(path: str | os.PathLike[str]) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise FormatError(f"{path}: not a readable HDF5 file ({exc})") from None


def detect_layout(f: h5py.File) -> Layout:
    """The layout of an open file, chosen by its datasets; the error lists what was found.

    A layout matches when at least one of its keys is present, so that a file missing one key
    is reported as that layout with a missing key rather than as unknown.
    """
    present = set(f.keys())
    best = max(LAYOUTS, key=lambda lay: sum(k in present for k in lay.keys))
    if not any(k in present for k in best.keys):
        expected = "; ".join(f"{lay.name}: {', '.join(lay.keys)}" for lay in LAYOUTS)
        raise FormatError(f"{f.filename}: unknown layout: datasets {sorted(present)}; expected one of {expected}")
    missing = [k for k in best.keys if k not in present]
    if missing:
        raise FormatError(f"{f.filename}: missing dataset(s) {', '.join(missing)} "
                          f"(the {best.name} layout needs {', '.join(best.keys)})")
    return best


def _jet_type(f: h5py.File, n: int, rows: slice) -> np.ndarray:
    """(n,) int8 jet classes from the ``jet_type`` dataset or attribute, or the file name."""
    if "jet_type" in f:
        return np.asarray(f["jet_type"][rows], dtype=np.int8)
    name = f.attrs.get("jet_type")
    if name is None:
        stem = Path(f.filename).stem
        name = stem[0] if stem.rstrip("0123456789") in JET_TYPES else None
    return np.full(n, JET_TYPES.index(name) if name in JET_TYPES else -1, dtype=np.int8)


def read_raw(f: h5py.File, layout: Layout, rows: slice = slice(None)) -> dict[str, np.ndarray]:
    """Rows of a file as the arrays of its kind, in pcbench's units.

    jets: ``particle_features`` (n, P, 4), ``jet_features`` (n, 4), ``jet_type`` (n,);
    voxel-showers: ``incident_energies`` (n, 1) MeV, ``showers`` (n, V) MeV;
    point-showers: ``points`` (n, P, 4) with E in MeV, ``mask`` (n, P), ``incident_energies`` (n,) MeV.
    """
    if layout.kind == "jets":
        pf = np.asarray(f["particle_features"][rows])
        return {"particle_features": pf, "jet_features": np.asarray(f["jet_features"][rows]),
                "jet_type": _jet_type(f, len(pf), rows)}
    if layout.kind == "voxel-showers":
        return {"incident_energies": np.asarray(f["incident_energies"][rows]),
                "showers": np.asarray(f["showers"][rows])}
    if layout.name == "ild":
        events = np.asarray(f["events"][rows], dtype=np.float32)
        if events.ndim != 3 or events.shape[1] != 4:
            raise FormatError(f"{f.filename}: events: shape {events.shape}, expected (N, 4, P) = (x, y, z, E)")
        points, mask = ild_events_to_points(events, _ild_y_unit(f, events))
        energy = np.asarray(f[layout.energy_key][rows], dtype=np.float32).reshape(-1) * layout.energy_to_mev
        return {"points": points, "mask": mask, "incident_energies": energy}
    points = np.asarray(f["points"][rows])
    return {"points": points, "mask": points[..., 3] > 0 if points.ndim == 3 else np.zeros(0, bool),
            "incident_energies": np.asarray(f["incident_energies"][rows]).reshape(-1)}


def _ild_y_unit(f: h5py.File, events: np.ndarray) -> str:
    """``layer`` or ``mm``: the ``y_unit`` attribute, else layer units when every real y is in [0, 30]
    (the CaloClouds training files store the layer index; the evaluation files store mm)."""
    unit = f.attrs.get("y_unit")
    if unit is not None:
        return unit.decode() if isinstance(unit, bytes) else str(unit)
    y = events[:, 1][events[:, 3] > 0]
    return "layer" if y.size == 0 or (y.min() >= 0 and y.max() <= 30) else "mm"


def ild_events_to_points(events: np.ndarray, y_unit: str) -> tuple[np.ndarray, np.ndarray]:
    """ILD ``events`` (N, 4, P) (x, y, z [mm], E [GeV]) as pcbench points (N, P, 4), E in MeV, y in mm.

    Real points move to the front of each row (the files pad at the front).  A y in layer units
    becomes the centre depth of the Si slab of layer ``floor(y)`` (ILD geometry); a layer index
    outside 0..29 becomes y = -1 mm, outside every layer, so projection counts it as outside.
    """
    from ..geometry import get_geometry

    points = np.moveaxis(events, 1, 2).astype(np.float32)
    mask = points[..., 3] > 0
    order = np.argsort(~mask, axis=1, kind="stable")
    points = np.take_along_axis(points, order[..., None], axis=1)
    mask = np.take_along_axis(mask, order, axis=1)
    points[..., 3] *= 1000.0  # GeV -> MeV
    if y_unit == "layer":
        depths = get_geometry("ild-ecal").layer_depths
        layer = np.floor(points[..., 1]).astype(np.int64)
        ok = (layer >= 0) & (layer < len(depths))
        points[..., 1] = np.where(ok, depths[np.clip(layer, 0, len(depths) - 1)], -1.0)
    points[~mask] = 0.0  # the reference code zeroes every coordinate of zero-energy slots
    return points, mask


def ild_points_to_events(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The inverse of ``ild_events_to_points`` for y in layer units: (N, 4, P), real points at the end."""
    from ..geometry import get_geometry

    ev = points.astype(np.float32).copy()
    ev[..., 1] = np.where(mask, get_geometry("ild-ecal").layer_of_depth(points[..., 1].ravel()).reshape(mask.shape), 0)
    if np.any(mask & (ev[..., 1] < 0)):
        raise FormatError("points with a depth outside every ILD layer cannot be written in layer units")
    ev[..., 3] /= 1000.0  # MeV -> GeV
    ev[~mask] = 0.0
    order = np.argsort(mask, axis=1, kind="stable")  # padding first, as in the CaloClouds files
    return np.moveaxis(np.take_along_axis(ev, order[..., None], axis=1), 2, 1)


def iter_raw(path: str | os.PathLike[str], chunk_rows: int = 10_000) -> Iterator[tuple[Layout, int, dict[str, np.ndarray]]]:
    """Yield ``(layout, first row, arrays)`` for consecutive chunks of a file (bounded memory)."""
    with _open(path) as f:
        layout = detect_layout(f)
        n = len(f[layout.keys[0]])
        for start in range(0, max(n, 1), chunk_rows):
            yield layout, start, read_raw(f, layout, slice(start, min(start + chunk_rows, n)))


def data_md5(path: str | os.PathLike[str], chunk_bytes: int = 32 << 20) -> str:
    """md5 of a file's data alone: each dataset of its layout (name, dtype, shape, then its bytes
    in C order, read in chunks of at most ``chunk_bytes``, at least one row), never its
    attributes.  Two files with the same arrays have the same ``data_md5`` even where they record
    different generation times or paths, which is what a leaderboard compares (the file's md5 is
    kept beside it).  Memory stays bounded whatever the file's size (the chunking does not change
    the digest)."""
    digest = hashlib.md5(usedforsecurity=False)
    with _open(path) as f:
        layout = detect_layout(f)
        for key in layout.keys:
            ds = f[key]
            digest.update(f"{key}|{ds.dtype.str}|{ds.shape}|".encode())
            n = ds.shape[0] if ds.shape else 0
            if not ds.shape:
                digest.update(np.ascontiguousarray(ds[()]).tobytes())
            row_bytes = max(1, ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64)))
            chunk_rows = max(1, chunk_bytes // row_bytes)
            for start in range(0, n, chunk_rows):
                digest.update(np.ascontiguousarray(ds[start:start + chunk_rows]).data)
    return digest.hexdigest()


def read_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's root attributes, JSON-encoded values decoded."""
    with _open(path) as f:
        return {k: _decode(v) for k, v in f.attrs.items()}


def _decode(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v.item() if isinstance(v, np.generic) else v


def _encode(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple)) else v


def read(path: str | os.PathLike[str], rows: slice = slice(None)) -> Container:
    """Read a file of any known layout into its validated container.

    Raises:
        FormatError: unknown layout, missing datasets, or invalid content (every problem named).
    """
    with _open(path) as f:
        layout = detect_layout(f)
        raw = read_raw(f, layout, rows)
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
    attrs.setdefault("source_file", str(path))
    attrs.setdefault("layout", layout.name)
    try:
        if layout.kind == "jets":
            return JetSet.from_jetnet(raw["particle_features"], raw["jet_features"], raw["jet_type"], attrs)
        if layout.kind == "voxel-showers":
            return VoxelShowerSet(np.asarray(raw["showers"], np.float32),
                                  np.asarray(raw["incident_energies"], np.float32).reshape(-1),
                                  attrs.get("geometry"), attrs)
        attrs["y_unit"] = "mm"  # the ILD reader converts layer units to mm
        return ShowerPointSet(np.asarray(raw["points"], np.float32), raw["mask"],
                              np.asarray(raw["incident_energies"], np.float32), attrs)
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None


def _file_attrs(container_attrs: dict[str, Any], attrs: dict[str, Any] | None) -> dict[str, Any]:
    """The root attributes of a written file: the container's provenance and ``attrs``, without
    what only describes the in-memory form."""
    meta = {**container_attrs, **(attrs or {})}
    for k in ("source_file", "layout", "y_unit"):
        meta.pop(k, None)
    return meta


def _set_attrs(f: h5py.File, kind: str, meta: dict[str, Any]) -> None:
    f.attrs["pcbench_kind"] = kind
    f.attrs["pcbench_schema"] = SCHEMA_VERSION
    for k, v in sorted(meta.items()):
        if v is not None:
            f.attrs[k] = _encode(v)


def _shower_rows(path: Path, data: ShowerPointSet | VoxelShowerSet, layout: str | None
                 ) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    """(kind, dataset name -> rows, attributes) of showers in the file layout."""
    if isinstance(data, VoxelShowerSet):
        return "voxel-showers", {"incident_energies": data.incident_energy[:, None], "showers": data.voxels}, \
            {"geometry": data.geometry}
    if data.attrs.get("y_unit", "mm") != "mm":
        raise FormatError(f"{path}: points must have y in mm to be written; convert layer units first")
    if layout == "ild":
        return "point-showers", {"events": ild_points_to_events(data.points, data.mask),
                                 "energy": data.incident_energy[:, None] / 1000.0}, {"y_unit": "layer"}
    return "point-showers", {"points": data.points, "incident_energies": data.incident_energy[:, None]}, {}


def write(path: str | os.PathLike[str], data: Container, attrs: dict[str, Any] | None = None,
          compression: str | None = "gzip", layout: str | None = None) -> Path:
    """Write a container in pcbench's schema, atomically (temporary file, then rename).

    Point showers go to ``pcbench-points`` unless ``layout="ild"`` (the CaloClouds layout: y in
    layer units, E in GeV, padding first).

    ``attrs`` (provenance: generator, settings, timings...) are stored as root attributes;
    dicts and lists are JSON-encoded.  Returns the path written.
    """
    path = Path(path)
    if not isinstance(data, JetSet):
        return write_showers(path, [data], attrs, compression, layout)
    meta = _file_attrs(data.attrs, attrs)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        opts = {"compression": compression} if compression else {}
        f.create_dataset("particle_features", data=data.particle_features, **opts)
        f.create_dataset("jet_features", data=data.jets, **opts)
        types = np.unique(data.jet_type)
        if len(types) == 1 and types[0] >= 0:
            meta["jet_type"] = JET_TYPES[types[0]]
        else:
            f.create_dataset("jet_type", data=data.jet_type)
        _set_attrs(f, "jets", meta)
    return path


def write_showers(path: str | os.PathLike[str], parts: Iterable[ShowerPointSet | VoxelShowerSet],
                  attrs: dict[str, Any] | None = None, compression: str | None = "gzip", layout: str | None = None
                  ) -> Path:
    """Write shower containers one after another into one file (as ``write`` writes one),
    atomically, holding one part in memory at a time.  The parts must be of one kind and have the
    same number of points (or voxels) per shower; the first part's ``attrs`` are the file's."""
    path = Path(path)
    kind, meta = None, {}
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        opts = {"compression": compression} if compression else {}
        for data in parts:
            part_kind, rows, extra = _shower_rows(path, data, layout)
            if kind is None:
                kind, meta = part_kind, {**_file_attrs(data.attrs, attrs), **{k: v for k, v in extra.items() if v}}
                for name, a in rows.items():
                    f.create_dataset(name, shape=(0, *a.shape[1:]), maxshape=(None, *a.shape[1:]), dtype=a.dtype,
                                     chunks=(max(1, min(len(a), (1 << 18) // max(1, a[0].size))), *a.shape[1:]), **opts)
            for name, a in rows.items():
                d = f[name]
                if part_kind != kind or d.shape[1:] != a.shape[1:]:
                    raise FormatError(f"{path}: part of {part_kind} with {name} rows {a.shape[1:]} after {kind} with "
                                      f"{d.shape[1:]}: the parts of one file must match")
                d.resize(len(d) + len(a), axis=0)
                d[len(d) - len(a):] = a
        if kind is None:
            raise FormatError(f"{path}: no showers to write")
        _set_attrs(f, kind, meta)
    return path
