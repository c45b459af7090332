"""``compare``: rank several sample files against one reference at once with one multiclass
classifier (``metrics.multiclass``: the CaloChallenge 2022 multiclass log-posterior, the EPiC-FM
multi-model classifier), and record the ranking as strict JSON and a Markdown table.

The files are validated, must hold one kind of data (jets, voxel showers or point showers) on one
geometry (particle count for jets, cell geometry for showers) as the reference, and are reduced to
the high-level features of their kind (``FEATURES``); a registered reference gives its test split.
Every number printed carries its definition and its error; parameterised showers are labelled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._io import atomic_write_text, file_md5
from .._outputs import output_dir
from .._platform import machine
from ..data import Cache, read, validate_file
from ..data.formats import data_md5, read_attrs
from ..errors import FormatError, IncompatibleError, UsageError
from ..metrics.multiclass import DEFINITION, MIN_PER_FOLD, REFERENCE_DEFINITION, ModelScore, MulticlassSettings, \
    multiclass_log_posterior
from . import is_parameterised, safe_name
from .log import loop
from .reference import load_reference, reference_source
from .result import finite_or_null

__all__ = ["compare", "CompareResult", "FEATURES", "ERROR_DEFINITION", "COMPARE_VERSION", "reference_text"]

COMPARE_VERSION = "compare-1"
#: the classifier's inputs per kind of data
FEATURES = {
    "jets": "m/pT_jet, pT, multiplicity, tau21, tau32 and the 36 EFPs (d <= 4): the inputs of the jet suite's "
            "boosted-tree classifier (auc_hl)",
    "voxel-showers": "the CaloChallenge high-level classifier inputs (log10 E_inc, log10 E_layer, centres and widths "
                     "in eta, phi and r, log10 E_tot, sparsity; calo_features.classifier_inputs_high)",
    "point-showers": "log10 E_inc and the 25 per-shower ILD observables after projection onto the ILD grid with its "
                     "threshold (the ILD suite's classifier inputs)",
}
ERROR_DEFINITION = "std over the K folds (ddof 1) / sqrt(K); the folds share training data, so it is a lower bound"
_SELF = "mean over the model's own held-out objects x of log p(model | x) (the write-up's consistency check)"
_ACCURACY = "multiclass accuracy on the held-out objects of every class (chance: 1/C)"
_SHARE = "fraction of held-out reference objects the classifier assigns to the model"


@dataclass
class CompareResult:
    """What ``compare`` found: per model (in the order given) its scores, rank and provenance; the
    classifier's accuracy and what equally good models give; the run's provenance."""

    kind: str
    models: list[dict[str, Any]]
    summary: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    record_version: int = 1

    def ranked(self) -> list[dict[str, Any]]:
        """The models, best (highest log-posterior) first."""
        return sorted(self.models, key=lambda m: m["rank"])

    def to_json(self) -> str:
        """Strict JSON (non-finite numbers as null), keys sorted: the same result, the same bytes."""
        data = {"kind": self.kind, "models": self.models, "summary": self.summary, "provenance": self.provenance,
                "record_version": self.record_version}
        return json.dumps(finite_or_null(data), indent=1, sort_keys=True, allow_nan=False) + "\n"

    def table(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the ranking, every number with its error (``fmt_value``); the first
        row's cells start with ``*`` where it beats the runner-up beyond both errors."""
        from .display import fmt_value

        header = ["rank", "model", "mean log p(model | reference object)", "mean log p(model | own objects)",
                  "reference objects assigned"]
        if self.summary["reference_class"]:
            header.append("mean log p(reference | model's objects)")
        header.append("data")
        ranked = self.ranked()
        best = _beats_runner_up(ranked)
        rows = []
        for m in ranked:
            lp = m["log_posterior"]
            row = [str(m["rank"]), m["name"], fmt_value(lp["value"], lp["error"]),
                   fmt_value(m["self_log_posterior"]["value"], m["self_log_posterior"]["error"]),
                   f"{100 * m['reference_share']:.1f} %"]
            if self.summary["reference_class"]:
                row.append(fmt_value(m["reference_log_posterior"]["value"], m["reference_log_posterior"]["error"]))
            row.append("PARAMETERISED showers" if m["parameterised"] else self.kind.replace("-", " "))
            if best and m["rank"] == 1:
                row[1:3] = [f"*{c}" for c in row[1:3]]
            rows.append(row)
        return header, rows

    def footer(self) -> list[str]:
        """One line per definition, the error, the sizes and settings, and the provenance."""
        s, p = self.summary, self.provenance
        lines = [f"mean log p(model | reference object): {DEFINITION}.",
                 f"Equally good models give log(1/C) = {s['perfect']:.4f} (C = {s['n_classes']} classes"
                 + (": the models and the reference)." if s["reference_class"] else ": the models)."),
                 f"mean log p(model | own objects): {_SELF}.",
                 f"reference objects assigned: {_SHARE}."]
        if s["reference_class"]:
            lines.append(f"mean log p(reference | model's objects): {REFERENCE_DEFINITION}.")
        lines += [f"± errors: {ERROR_DEFINITION}. Bold: a first place beyond both errors.",
                  f"{_ACCURACY}: {s['accuracy']['value']:.4f} ± {s['accuracy']['error']:.4f} (chance "
                  f"{s['chance']:.4f}).",
                  f"{s['n_per_class']} objects per class, {p['settings']['folds']} folds, classifier "
                  f"{p['settings']['classifier']} ({p['profile']} profile), seed {p['seed']}; features: "
                  f"{FEATURES[self.kind]}.",
                  f"reference: {reference_text(p)}"
                  + (", PARAMETERISED showers (not Geant4)" if p["reference_parameterised"] else "") + "."]
        if any(m["parameterised"] for m in self.models):
            lines.append("PARAMETERISED: " + ", ".join(m["name"] for m in self.models if m["parameterised"])
                         + " hold parameterised showers (GFlash-type, not Geant4) or samples of a model trained on "
                         "them.")
        lines.append("samples: " + "; ".join(f"{m['name']} = {m['samples']} (md5 {m['samples_md5']})"
                                             for m in self.models) + ".")
        hw = p["hardware"]
        lines.append(f"pcbench {p['pcbench_version']} ({p['compare_version']}), {hw.get('platform')}, "
                     f"{hw.get('cpu_count')} cores, {hw.get('torch_threads')} torch threads, device {hw.get('device')}.")
        return lines

    def markdown(self) -> str:
        """The ranking as a Markdown table with its footer."""
        header, rows = self.table()

        def cell(c: str) -> str:
            c = c.replace("|", "\\|")
            return f"**{c[1:]}**" if c.startswith("*") else c

        p = self.provenance
        out = [f"# {len(self.models)} models against {reference_text(p)} ({self.kind.replace('-', ' ')})", "",
               "| " + " | ".join(cell(h) for h in header) + " |", "|" + " --- |" * len(header)]
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        out += [""] + [f"- {line}" for line in self.footer()]
        return "\n".join(out) + "\n"

    def write(self, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``compare_<names>.json`` and ``.md`` atomically into ``folder``; returns both paths."""
        stem = safe_name("compare_" + "_".join(m["name"] for m in self.models))[:120]
        json_path, md_path = Path(folder) / f"{stem}.json", Path(folder) / f"{stem}.md"
        atomic_write_text(json_path, self.to_json())
        atomic_write_text(md_path, self.markdown())
        return json_path, md_path


def reference_text(provenance: dict[str, Any]) -> str:
    """How tables name the reference: 'the file ref.h5' or 'jetnet30:g (test split)'."""
    split = provenance.get("reference_split")
    return f"the file {provenance['reference']}" if split == "file" else f"{provenance['reference']} ({split} split)"


def _beats_runner_up(ranked: list[dict[str, Any]]) -> bool:
    if len(ranked) < 2:
        return False
    a, b = ranked[0]["log_posterior"], ranked[1]["log_posterior"]
    return a["value"] - b["value"] > float(np.hypot(a["error"], b["error"]))


def _names(samples: list[Path], given: Sequence[str] | None, attrs: list[dict[str, Any]]) -> list[str]:
    if given:
        if len(given) != len(samples):
            raise UsageError(f"--name given {len(given)} time(s) for {len(samples)} samples: name every sample, in "
                             "order, or none")
        names = [str(n) for n in given]
    else:
        names = [str(a.get("model") or p.stem) for p, a in zip(samples, attrs)]
    seen: dict[str, Path] = {}
    for name, path in zip(names, samples):
        if name in seen:
            raise UsageError(f"{seen[name]} and {path} are both named {name!r}: give each sample its own --name")
        seen[name] = path
    return names


def _validated(samples: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], str]:
    """The sample paths, each checked to be a valid file, and their one kind."""
    paths = [Path(s) for s in samples]
    if len(paths) < 2:
        raise UsageError(f"compare needs at least two sample files, got {len(paths)}: for one model use "
                         "`pcbench evaluate`")
    kinds = {}
    for p in paths:
        if not p.is_file():
            raise UsageError(f"{p}: no such file")
        report = validate_file(p)
        if not report.ok:
            raise FormatError(f"{p} is not a valid sample file ({len(report.problems)} problem(s); `pcbench validate` "
                              "lists them): " + "; ".join(str(q) for q in report.problems))
        kinds[p] = report.kind
    if len(set(kinds.values())) > 1:
        raise IncompatibleError("the samples hold different kinds of data ("
                                + ", ".join(f"{p} {k}" for p, k in kinds.items())
                                + "): compare samples of one kind")
    return paths, next(iter(kinds.values()))


def _rows(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """``cap`` sorted rows of ``n`` drawn without replacement (all where ``cap`` >= n)."""
    return np.arange(n) if cap >= n else np.sort(rng.choice(n, cap, replace=False))


def _jet_inputs(paths: list[Path], reference: str, cache: Cache, cap: int | None, rng: np.random.Generator,
                progress: Callable[[str], None]) -> tuple[np.ndarray, list[np.ndarray], dict[str, Any]]:
    from ..data import JetSet
    from .jets import hl_matrix, jet_features

    ref, info = load_reference(reference, cache)
    if not isinstance(ref, JetSet):
        raise IncompatibleError(f"the samples hold jets, but the reference {reference} holds {ref.kind}: compare "
                                "against a reference of the same kind")
    sets = [read(p) for p in paths]
    slots = {p: s.num_particles for p, s in zip(paths, sets)}
    if len({*slots.values(), ref.num_particles}) > 1:
        raise IncompatibleError("the jets have different particle counts (" + ", ".join(f"{p} {k}" for p, k in slots.items())
                                + f", the reference {reference} {ref.num_particles}): compare jets of one data set")
    n = min(len(x) for x in (ref, *sets))
    cap = n if cap is None else min(n, cap)
    out = []
    for name, jets in [("reference", ref), *zip(map(str, paths), sets)]:
        progress(f"features: {name}")
        out.append(hl_matrix(jet_features(jets.subset(_rows(len(jets), cap, rng)))))
    return out[0], out[1:], {**info, "reference_attrs": ref.attrs, "attrs": [s.attrs for s in sets],
                             "rows": [len(s) for s in sets], "reference_rows": len(ref)}


def _shower_inputs(paths: list[Path], kind: str, reference: str, cache: Cache, cap: int | None,
                   rng: np.random.Generator, energy_check: bool,
                   progress: Callable[[str], None]) -> tuple[np.ndarray, list[np.ndarray], dict[str, Any]]:
    from ..data.containers import VoxelShowerSet
    from ..data.sources import ShowerSource
    from ..geometry import get_geometry
    from . import shared_geometry
    from .sources import check_incident_energies

    ref, info, ref_geometry = reference_source(reference, cache)
    first = next(ref.chunks(1))[1]
    if (kind == "voxel-showers") != isinstance(first, VoxelShowerSet):
        raise IncompatibleError(f"the samples hold {kind}, but the reference {reference} holds {first.kind}: compare "
                                "against a reference of the same kind")
    attrs = [read_attrs(p) for p in paths]
    on = {p: shared_geometry(p, a, kind, reference, first, ref_geometry) for p, a in zip(paths, attrs)}
    if len(set(on.values())) > 1:
        raise IncompatibleError("the samples are on different geometries (" + ", ".join(f"{p} {g}" for p, g in on.items())
                                + "): compare samples on one geometry")
    geometry = get_geometry(next(iter(on.values())))
    sources = [ShowerSource.of(p) for p in paths]
    n = min(len(x) for x in (ref, *sources))
    cap = n if cap is None else min(n, cap)
    rows = [_rows(len(src), cap, rng) for src in (ref, *sources)]
    energy: dict[str, Any] = {}
    if energy_check:
        ref_e = ref.incident_energies()[rows[0]]
        energy = {str(p): check_incident_energies(src.incident_energies()[r], ref_e, str(p))
                  for p, src, r in zip(paths, sources, rows[1:])}
    out = []
    for name, src, r in zip(["reference", *map(str, paths)], (ref, *sources), rows):
        progress(f"features: {name}")
        out.append(_shower_features(src, r, kind, geometry))
    return out[0], out[1:], {**info, "reference_attrs": first.attrs, "attrs": attrs, "geometry": geometry.name,
                             "rows": [len(s) for s in sources], "reference_rows": len(ref),
                             "energy_check": energy or "off"}


def _shower_features(src, rows: np.ndarray, kind: str, geometry) -> np.ndarray:
    """(len(rows), F) classifier inputs of the showers ``rows`` of ``src`` (streamed)."""
    if kind == "voxel-showers":
        from ..metrics import calo_features
        from .calochallenge import CaloSuiteConfig, summarise_voxels, Want

        threshold = calo_features.THRESHOLDS_MEV.get(geometry.name, 0.0)
        summary = summarise_voxels(src, {"x": Want(rows)}, geometry, threshold, CaloSuiteConfig().chunk_rows)["x"][0]
        return calo_features.classifier_inputs_high(summary.feats, summary.e_inc)
    from .ild import ILDSuiteConfig, classifier_inputs, summarise_points

    # one cell energy kept: the classifier inputs leave the E_cell column out
    obs = summarise_points(src, {"x": rows}, geometry, geometry.threshold, ILDSuiteConfig().chunk_rows, 1)["x"]
    return classifier_inputs(obs)


def _score(m: ModelScore, name: str, path: Path, attrs: dict[str, Any], rows: int, rank: int, n_classes: int,
           reference_class: bool) -> dict[str, Any]:
    """One model's entry in the record."""
    classes = f"the {n_classes} classes: the models in order" + (", then the reference" if reference_class else "")
    entry = {
        "name": name, "rank": rank, "samples": str(path), "samples_md5": file_md5(path),
        "samples_data_md5": data_md5(path), "samples_rows": rows, "parameterised": is_parameterised(attrs),
        "log_posterior": {"value": m.log_posterior, "error": m.error, "definition": DEFINITION, "better": "higher",
                          "folds": list(m.folds)},
        "self_log_posterior": {"value": m.self_log_posterior, "error": m.self_error, "definition": _SELF,
                               "better": "higher"},
        "reference_share": m.reference_share,
        "crosscheck": {"values": list(m.crosscheck), "definition": "mean over the model's held-out objects of "
                       f"log p(c | x) for each class c ({classes})"},
        "confusion": {"values": list(m.confusion), "definition": "fractions of the model's held-out objects assigned "
                      f"to each class ({classes})"},
        "reference_log_posterior": None,
    }
    if reference_class:
        entry["reference_log_posterior"] = {"value": m.reference_log_posterior, "error": m.reference_error,
                                            "definition": REFERENCE_DEFINITION, "better": "higher"}
    return entry


def compare(samples: Sequence[str | os.PathLike[str]], reference: str, profile: str = "full", seed: int = 42,
            names: Sequence[str] | None = None, out_dir: str | os.PathLike[str] | None = None,
            cache: Cache | None = None, progress: Callable[[str], None] | None = None, *,
            reference_class: bool = False, energy_check: bool = True, device: str = "cpu") -> CompareResult:
    """Rank ``samples`` (two or more files of one kind) against ``reference`` (a registry name: its
    test split; or a file) with one multiclass classifier (``metrics.multiclass``).

    ``profile``: ``full`` = the CaloChallenge DNN on every object, ``fast`` = boosted trees on at
    most 10,000 objects per class.  ``names``: one per sample (default: the file's ``model``
    attribute, else its stem).  ``reference_class`` also trains the reference as a class (a
    variant; the papers' classifier knows the models only).  Showers must follow the reference's
    incident energies (``energy_check``; the classifier sees log10 E_inc).  With ``out_dir`` the
    record (strict JSON) and a Markdown table are written there (``CompareResult.write``).
    Raises UsageError, FormatError or IncompatibleError with a one-line message naming the files.
    """
    from .._device import check_device

    if profile not in ("full", "fast"):
        raise UsageError(f"--profile {profile!r}: expected full or fast")
    check_device(device)
    if out_dir is not None:
        out_dir = output_dir(out_dir)
    paths, kind = _validated(samples)
    step = progress or (lambda _m: None)
    base = MulticlassSettings()
    settings = MulticlassSettings.named(profile, seed=seed, reference_class=reference_class,
                                        dnn=replace(base.dnn, device=device))
    cache = cache or Cache()
    rng = np.random.default_rng(seed)
    if kind == "jets":
        ref_x, xs, info = _jet_inputs(paths, reference, cache, settings.max_per_class, rng, step)
    else:
        ref_x, xs, info = _shower_inputs(paths, kind, reference, cache, settings.max_per_class, rng, energy_check, step)
    attrs, rows = info.pop("attrs"), info.pop("rows")
    names = _names(paths, names, attrs)
    usable = min(int(np.isfinite(x).all(axis=1).sum()) for x in (ref_x, *xs))
    if usable < MIN_PER_FOLD * settings.folds:
        raise IncompatibleError(f"{usable} usable objects in the smallest of the reference and the samples ("
                                + ", ".join(map(str, paths)) + f"): {settings.folds} folds need at least "
                                f"{MIN_PER_FOLD * settings.folds}")
    step("multiclass classifier")
    res = multiclass_log_posterior(ref_x, xs, settings, loop(progress, "classifier, folds", settings.folds))
    order = sorted(range(len(paths)), key=lambda i: -res.models[i].log_posterior)
    rank = {i: r + 1 for r, i in enumerate(order)}
    models = [_score(m, names[i], paths[i], attrs[i], rows[i], rank[i], res.n_classes, reference_class)
              for i, m in enumerate(res.models)]
    ref_attrs = info.pop("reference_attrs")
    summary = {"perfect": res.perfect, "chance": res.chance, "n_classes": res.n_classes,
               "n_per_class": res.n_per_class, "reference_class": reference_class,
               "accuracy": {"value": res.accuracy, "error": res.accuracy_error, "definition": _ACCURACY},
               "definition": DEFINITION, "error_definition": ERROR_DEFINITION}
    provenance = {**info, "compare_version": COMPARE_VERSION, "pcbench_version": __version__,
                  "hardware": machine(device), "seed": seed, "profile": profile, "settings": res.settings,
                  "features": FEATURES[kind], "n_features": int(ref_x.shape[1]),
                  "dropped_rows": dict(zip(["reference", *names], res.dropped)), "fold_best": list(res.fold_best),
                  "reference_parameterised": is_parameterised(ref_attrs),
                  "samples_parameterised": any(m["parameterised"] for m in models)}
    result = CompareResult(kind, models, summary, provenance)
    if out_dir is not None:
        result.write(out_dir)
    return result
