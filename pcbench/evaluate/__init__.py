"""``evaluate``: validate a sample file, run the metric suite of its kind, write a result record."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from dataclasses import dataclass, replace

from .. import __version__
from .._io import file_md5
from .._outputs import output_dir
from .._platform import machine
from ..data import JET_TYPES, Cache, infer_jet_type, read, validate_file
from ..data.geometry_of import shower_geometry
from ..data.containers import VoxelShowerSet
from ..data.formats import data_md5, read_attrs
from ..errors import FormatError, IncompatibleError, UsageError
from .jets import JetSuiteConfig, jet_suite
from .reference import _file_info, load_reference, reference_source, truth_split
from .binning import BinSpec
from .protocol import Rows
from .result import EvaluationResult, MetricValue

__all__ = ["evaluate", "EvaluationResult", "MetricValue", "JetSuiteConfig", "safe_name"]


def evaluate(samples: str | os.PathLike[str], reference: str, model: str | None = None,
             profile: str = "full", cache: Cache | None = None, out_dir: str | os.PathLike[str] | None = None,
             progress: Callable[[str], None] | None = None, plots: bool = False,
             metrics: tuple[str, ...] = (), energy_check: bool = True,
             jet_type: str | None = None, device: str = "cpu", truth: str = "auto",
             names: dict[str, Any] | None = None, per_bin: bool = False, energy_bins: str = "auto",
             jet_bins: str = "pt:4", null: int = 0, equivalent_stats: bool = False) -> EvaluationResult:
    """Evaluate a sample file against a reference (registry name: its test split; or a file).

    The file is validated first (every problem is reported); the suite of its kind runs with the
    truth-vs-truth column; the record holds values, errors, the reference's name, split and
    checksum, the sample file's checksum and size, the suite version and settings, seeds,
    pcbench's version, the hardware, and the generation time per object if the file carries it.
    With ``out_dir`` the record is written there as ``<model>.json``; with ``plots`` also PNG
    histograms (``<model>_plots/``) and a one-page HTML report (``<model>.html``).
    ``metrics`` restricts the suite to some metrics (empty: all).  Shower samples are
    streamed (bounded memory): voxel showers get the CaloChallenge suite, point showers the
    ILD / CaloClouds suite; their incident energies must follow the reference's
    (``energy_check``).  ``jet_type`` (g, q, t, w, z) names the jets' class where neither file
    says it (FPND needs it).  ``device`` ("cpu", "cuda", "cuda:N") runs the networks (FPND, the
    classifiers) and the EFPs there; values agree with the CPU's to float32 rounding.

    ``truth`` chooses the truth row's sample (``protocol.py``): ``auto`` takes, for a registered
    reference, its training split (files) and compares every generated object with the whole test
    split (the papers' protocol), and for a reference file the file's halves; ``halves`` forces
    the halves; a file path is a disjoint truth sample for a reference file (e.g. the
    CaloChallenge's other file).  The truth row is kept in the cache (``truth-rows/``), keyed by
    the checksums and settings, so later models against the same reference reuse it.

    ``names``: how the caller names what it passed (provenance entries that replace the computed
    ones, e.g. a leaderboard's data-set name and split for its split files; ``truth_sample`` names
    the truth sample in the protocol), applied before the record and its report are written.

    ``energy_bins`` (showers: ``auto``, N, or edges in MeV; ``binning.py``) are the bins of the
    response metrics and, with ``per_bin``, of the per-bin runs of the whole suite; ``jet_bins``
    (``pt:N``, ``mass:N`` or edges in GeV) those of the jets' per-bin runs (``breakdown.py``).
    ``null`` K > 0: each metric's p-value and z against K reference-vs-reference re-draws at the
    same sizes; ``equivalent_stats``: the reference sample size that scores as badly as the
    model (``significance.py``).
    """
    samples = Path(samples)
    if out_dir is not None:
        out_dir = output_dir(out_dir)
    if jet_type is not None and jet_type not in JET_TYPES:
        raise UsageError(f"--jet-type {jet_type!r}: expected one of {', '.join(JET_TYPES)}")
    from .._device import check_device

    check_device(device)
    from .binning import parse_energy_bins, parse_jet_bins

    extras = _Extras(per_bin, parse_energy_bins(energy_bins), parse_jet_bins(jet_bins), null, equivalent_stats,
                     progress or (lambda _m: None))
    if null < 0:
        raise UsageError(f"--null {null}: expected the number of reference-vs-reference draws, 0 (off) or more")
    report = validate_file(samples)
    if not report.ok:
        raise FormatError(f"{samples} is not a valid sample file ({len(report.problems)} problem(s); `pcbench validate` "
                          "lists them): " + "; ".join(str(p) for p in report.problems))
    truth_file, truth_kind = _truth_file(truth)
    cache = cache or Cache()
    if report.kind in ("voxel-showers", "point-showers"):
        return _evaluate_showers(samples, report.kind, reference, model, profile, cache, out_dir, progress, plots,
                                 metrics, energy_check, device, truth, truth_file, truth_kind, names, extras,
                                 energy_bins)
    cfg = JetSuiteConfig.named(profile, metrics=tuple(metrics), device=device)
    gen = read(samples)
    ref, ref_info = load_reference(reference, cache)
    if type(gen) is not type(ref):
        raise IncompatibleError(f"{samples} holds {report.kind}, but the reference {reference} holds "
                                f"{ref.kind}: evaluate against a reference of the same kind")
    truth_set, truth_info = _truth_sample(reference, truth, truth_file, cache, streamed=False)
    if truth_file is not None and type(truth_set) is not type(ref):
        raise IncompatibleError(f"--truth {truth_file} holds {truth_set.kind}, the reference {reference} {ref.kind}")
    jet_type = jet_type or infer_jet_type(ref, gen)
    store = _store(cache, ref_info, truth_info)
    try:
        values, settings, samples_used = jet_suite(gen, ref, cfg, jet_type, progress, truth_set,
                                                   _truth_name(truth_info), store)
    except IncompatibleError as exc:
        raise IncompatibleError(f"{samples} against {reference}: {exc}") from None
    rows = samples_used["rows"]

    def suite_on(r: Any, model: bool = True, c: JetSuiteConfig = cfg) -> dict[str, MetricValue]:
        return jet_suite(gen, ref, c, jet_type, None, truth_set, _truth_name(truth_info), store, rows=r,
                         model=model)[0]

    values, settings["significance"] = extras.significance(values, rows, len(gen), len(ref),
                                                           0 if truth_set is None else len(truth_set), cfg.seed,
                                                           "jets", lambda r: suite_on(r, model=False))
    binned = extras.jets(gen, ref, truth_set, rows, lambda r: suite_on(r, c=replace(cfg, fpnd=False)))
    result = _record(samples, report.kind or "jets", model or gen.attrs.get("model") or samples.stem, values,
                     {**ref_info, **_truth_provenance(truth_info), **settings, "seed": cfg.seed,
                      "reference_rows": len(ref), "truth_row_cached": store.hits > 0}, gen.attrs, len(gen),
                     ref.attrs, names)
    result.per_bin = binned

    def figures(folder: Path) -> list[Path]:
        from .plots import jet_plots

        return jet_plots(samples_used["gen"], samples_used["real"], folder, result)

    return _write(result, out_dir, figures if plots else None)


def _write(result: EvaluationResult, out_dir: str | os.PathLike[str] | None,
           figures: Callable[[Path], list[Path]] | None) -> EvaluationResult:
    """Write the record as ``<model>.json`` in ``out_dir`` and, with ``figures``, its plots
    (``<model>_plots/``) and one-page HTML report, all from the one finished provenance."""
    if out_dir is not None:
        path = result.write(Path(out_dir) / f"{safe_name(result.model)}.json")
        if figures is not None:
            from .plots import html_report
            from .practice_plots import practice_plots

            folder = path.parent / f"{path.stem}_plots"
            html_report(result, figures(folder) + practice_plots(result, folder), path.with_suffix(".html"))
    return result


@dataclass
class _Extras:
    """What an evaluation adds to its suite: per-bin runs, null draws, equivalent statistics."""

    per_bin: bool = False
    energy_bins: BinSpec | None = None
    jet_bins: BinSpec | None = None
    null: int = 0
    equivalent: bool = False
    step: Callable[[str], None] = lambda _m: None

    def significance(self, values: dict[str, MetricValue], rows: Rows, n_gen: int, n_ref: int, n_truth: int,
                     seed: int, objects: str, truth_row: Callable[[Rows], dict[str, MetricValue]],
                     ) -> tuple[dict[str, MetricValue], dict[str, Any] | None]:
        if not (self.null or self.equivalent):
            return values, None
        from .significance import run_significance

        values, details = run_significance(values, rows, n_gen, n_ref, n_truth, seed, self.null, self.equivalent,
                                           objects, truth_row, self.step)
        return values, {"null_draws": self.null, "equivalent_stats": self.equivalent, "metrics": details}

    def showers(self, gen: Any, ref: Any, truth: Any, rows: Rows,
                run: Callable[[Rows], dict[str, MetricValue]]) -> dict[str, Any] | None:
        """The suite per incident-energy bin (each sample's rows binned by their own E_inc)."""
        if not self.per_bin:
            return None
        from .binning import bin_edges
        from .breakdown import per_bin

        e = {"gen": gen.incident_energies()[rows.gen], "ref": ref.incident_energies()[rows.ref],
             "truth": (truth or ref).incident_energies()[rows.truth]}
        edges = bin_edges(e["ref"], self.energy_bins)
        return per_bin(self.energy_bins, edges, e, lambda pos: run(_rows_at(rows, pos)), self.step)

    def jets(self, gen: Any, ref: Any, truth: Any, rows: Rows,
             run: Callable[[Rows], dict[str, MetricValue]]) -> dict[str, Any] | None:
        """The suite per bin of jet pT or mass [GeV] (each sample's jets binned by their own)."""
        if not self.per_bin:
            return None
        from .binning import bin_edges
        from .breakdown import per_bin

        col = {"pt": 0, "mass": 2}[self.jet_bins.variable]
        v = {"gen": gen.jets[rows.gen, col], "ref": ref.jets[rows.ref, col],
             "truth": (truth if truth is not None else ref).jets[rows.truth, col]}
        if not np.any(v["gen"] > 0):
            raise IncompatibleError(f"--jet-bins {self.jet_bins.variable}: the generated jets carry no jet "
                                    f"{self.jet_bins.variable} (column {col} of `jets` is 0)")
        edges = bin_edges(v["ref"], self.jet_bins)
        return per_bin(self.jet_bins, edges, v, lambda pos: run(_rows_at(rows, pos)), self.step)


def _rows_at(rows: Rows, pos: dict[str, np.ndarray]) -> Rows:
    """The protocol's rows at the positions of one bin."""
    return replace(rows, gen=rows.gen[pos["gen"]], ref=rows.ref[pos["ref"]], truth=rows.truth[pos["truth"]])


def _truth_file(truth: str) -> tuple[Path | None, str | None]:
    """``--truth``: auto, halves (None, None), or a file, checked here (it must exist and be a valid
    data file): (path, the kind of data it holds)."""
    if truth in ("auto", "halves"):
        return None, None
    path = Path(truth)
    if not path.is_file():
        raise UsageError(f"--truth {truth!r}: expected auto, halves or an existing HDF5 file (a real sample disjoint "
                         "from the reference)")
    report = validate_file(path)
    if not report.ok:
        raise FormatError(f"--truth {path} is not a valid data file: " + "; ".join(str(p) for p in report.problems))
    return path, report.kind


def _truth_sample(reference: str, truth: str, truth_file: Path | None, cache: Cache,
                  streamed: bool) -> tuple[Any, dict[str, Any]]:
    """The truth row's sample and its provenance: a registered reference's training split
    (``truth`` auto), the ``--truth`` file, or (None, {}) for the reference's halves; jets in
    memory, showers (``streamed``) as a ShowerSource read chunk by chunk."""
    split = truth_split(reference, truth)
    if split is not None:
        return reference_source(split[0], cache, split[1])[:2] if streamed else load_reference(split[0], cache, split[1])
    if truth_file is not None:
        from ..data.sources import ShowerSource

        return (ShowerSource.of(truth_file) if streamed else read(truth_file)), _file_info(truth_file)
    return None, {}


def _truth_name(info: dict[str, Any]) -> str:
    """How footers name the truth sample: 'jetnet30:g train split', 'file dataset_2_1.hdf5'."""
    if not info:
        return "half B of the reference file"
    if info["reference_split"] == "file":
        return f"the file {Path(info['reference']).name}"
    return f"{info['reference']} {info['reference_split']} split"


def _truth_provenance(info: dict[str, Any]) -> dict[str, Any]:
    return {f"truth_{k.removeprefix('reference_')}" if k != "reference" else "truth": v for k, v in info.items()}


def _store(cache: Cache, ref_info: dict[str, Any], truth_info: dict[str, Any]):
    """Where the truth row is kept: the cache's ``truth-rows/``, keyed by both samples' checksums."""
    from .truth_cache import TruthStore

    identity = {"reference": ref_info.get("reference_md5"), "reference_split": ref_info.get("reference_split"),
                "truth": truth_info.get("reference_md5"), "truth_split": truth_info.get("reference_split")}
    return TruthStore(cache.root / "truth-rows", identity)


def safe_name(name: str) -> str:
    """``name`` as a file stem: runs of other characters than letters, digits, ``._-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def is_parameterised(attrs: dict[str, Any]) -> bool:
    """Whether a file holds parameterised showers, or samples of a model trained on them."""
    trained_on = attrs.get("training_data") or {}
    return bool(attrs.get("parameterised", False) or (isinstance(trained_on, dict) and trained_on.get("parameterised")))


def _record(samples: Path, kind: str, model: str, values: dict[str, MetricValue], settings: dict[str, Any],
            attrs: dict[str, Any], rows: int, ref_attrs: dict[str, Any],
            names: dict[str, Any] | None = None) -> EvaluationResult:
    """The result with its provenance: the sample file (md5 of the file and of its data arrays
    alone), the settings, pcbench, the hardware, and whether samples or reference are
    parameterised showers."""
    provenance = {
        "samples": str(samples), "samples_md5": file_md5(samples), "samples_data_md5": data_md5(samples),
        "samples_bytes": samples.stat().st_size,
        "samples_rows": rows, **settings, "pcbench_version": __version__, "hardware": machine(),
        "generation_time_per_object_s": attrs.get("generation_time_per_object_s"),
        "generation_hardware": attrs.get("hardware"), "generation_batch_size": attrs.get("generation_batch_size"),
        "training": attrs.get("training"),
        "samples_parameterised": is_parameterised(attrs),
        "reference_parameterised": is_parameterised(ref_attrs),
    }
    names = dict(names or {})
    if "truth_sample" in names and provenance.get("protocol"):
        provenance["protocol"] = {**provenance["protocol"], "truth_sample": names.pop("truth_sample")}
    provenance.update(names)
    return EvaluationResult(kind=kind, model=model, metrics=values, provenance=provenance)


def shared_geometry(samples: Path, attrs: dict[str, Any], kind: str, reference: str, first: Any,
                     ref_geometry: str | None) -> str:
    """The one geometry that the samples and the reference are both on; raises where they differ
    (name or voxel count) or where neither says which it is."""
    from ..geometry import get_geometry

    voxels = kind == "voxel-showers"
    with h5py.File(samples, "r") as f:
        width = f["showers"].shape[1] if voxels else None
    ref_width = first.voxels.shape[1] if voxels else None
    ours = shower_geometry(attrs, width)
    theirs = shower_geometry(first.attrs, ref_width, ref_geometry)
    if voxels and width != ref_width:
        raise IncompatibleError(f"{samples} has {width} voxels per shower ({ours or 'no known geometry'}), the "
                                f"reference {reference} {ref_width} ({theirs or 'no known geometry'}): samples and "
                                "reference must be on the same geometry")
    if ours and theirs and ours != theirs and not voxels and get_geometry(ours).is_window_of(get_geometry(theirs)):
        return theirs  # points made on a window of the reference's cells (ild-ecal-30 of ild-ecal): on its grid
    if ours and theirs and ours != theirs:
        raise IncompatibleError(f"{samples} is on the geometry {ours}, the reference {reference} on {theirs}: samples "
                                "and reference must be on the same geometry")
    name = ours or theirs
    if name is None:
        raise IncompatibleError(f"{samples}: cannot tell the geometry of {width} voxels per shower; set the file's "
                                "`geometry` attribute or use a registered reference")
    if voxels and get_geometry(name).n_cells != width:
        raise IncompatibleError(f"{samples} has {width} voxels per shower, but its geometry {name} has "
                                f"{get_geometry(name).n_cells}")
    return name


def _evaluate_showers(samples: Path, kind: str, reference: str, model: str | None, profile: str, cache: Cache | None,
                      out_dir: str | os.PathLike[str] | None, progress: Callable[[str], None] | None, plots: bool,
                      metrics: tuple[str, ...], energy_check: bool, device: str = "cpu", truth: str = "auto",
                      truth_file: Path | None = None, truth_kind: str | None = None,
                      names: dict[str, Any] | None = None, extras: _Extras | None = None,
                      energy_bins: str = "auto") -> EvaluationResult:
    """The CaloChallenge suite for voxel showers, the ILD suite for point showers."""
    from ..geometry import get_geometry
    from .protocol import half_rows, split_rows
    from ..data.sources import ShowerSource
    from .sources import check_incident_energies

    attrs = read_attrs(samples)
    gen = ShowerSource.of(samples)
    ref, ref_info, ref_geometry = reference_source(reference, cache)
    truth_src, truth_info = _truth_sample(reference, truth, truth_file, cache, streamed=True)
    first = next(ref.chunks(1))[1]
    if (kind == "voxel-showers") != isinstance(first, VoxelShowerSet):
        raise IncompatibleError(f"{samples} holds {kind}, but the reference {reference} holds "
                                f"{first.kind}: evaluate against a reference of the same kind")
    geometry = get_geometry(shared_geometry(samples, attrs, kind, reference, first, ref_geometry))
    if truth_file is not None:
        if truth_kind != kind:
            raise IncompatibleError(f"--truth {truth_file} holds {truth_kind}, but {samples} holds {kind}: the truth "
                                    "sample must be of the reference's kind")
        shared_geometry(truth_file, read_attrs(truth_file), kind, reference, first, ref_geometry)
    if kind == "voxel-showers":
        from .calochallenge import CaloSuiteConfig as Config, calochallenge_suite as suite
    else:
        from .ild import ILDSuiteConfig as Config, ild_suite as suite  # type: ignore[assignment]
    cfg = Config.named(profile, metrics=tuple(metrics), device=device, energy_bins=energy_bins)
    try:
        rows = (half_rows(len(gen), len(ref), cfg.seed, objects="showers") if truth_src is None else
                split_rows(len(gen), len(ref), len(truth_src), cfg.seed, _truth_name(truth_info), objects="showers"))
    except IncompatibleError as exc:
        raise IncompatibleError(f"{samples} against {reference}: {exc}") from None
    energy = {"energy_check": "off"}
    if energy_check:
        energy = check_incident_energies(gen.incident_energies()[rows.gen], ref.incident_energies()[rows.ref],
                                         str(samples))
    store = _store(cache, ref_info, truth_info)
    values, settings, used = suite(gen, ref, rows, geometry, cfg, progress, truth_src, store)

    def suite_on(r: Rows, model: bool = True) -> dict[str, MetricValue]:
        return suite(gen, ref, r, geometry, cfg, None, truth_src, store, model=model)[0]

    extras = extras or _Extras()
    values, settings["significance"] = extras.significance(values, rows, len(gen), len(ref),
                                                           0 if truth_src is None else len(truth_src), cfg.seed,
                                                           "showers", lambda r: suite_on(r, model=False))
    binned = extras.showers(gen, ref, truth_src, rows, suite_on)
    result = _record(samples, kind, model or attrs.get("model") or samples.stem, values,
                     {**ref_info, **_truth_provenance(truth_info), **settings, **energy, "seed": cfg.seed,
                      "reference_rows": len(ref), "truth_row_cached": store.hits > 0}, attrs, len(gen),
                     first.attrs, names)
    result.per_bin = binned

    def figures(folder: Path) -> list[Path]:
        from .shower_plots import shower_plots

        return shower_plots(used, geometry, folder, result)

    return _write(result, out_dir, figures if plots else None)
