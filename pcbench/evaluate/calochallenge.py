"""The CaloChallenge metric suite for voxel showers, computed as the challenge's ``evaluate.py`` does,
streamed over the files (bounded memory), with errors and the truth-vs-truth column.

Separation powers of the challenge's histograms (its binnings), FPD and KPD on the high-level
classifier inputs (jetnet's settings in the challenge: ``fpd(min_samples=10000)``,
``kpd(batch_size=10000)``), the DNN classifier on low- and high-level inputs (AUC, JSD), and
precision / recall / density / coverage (k = 5) on log10 voxel energies (empty voxels at 0.1
MeV).  The high-level features and the cell spectrum use all showers; the low-level classifier
and PRDC at most ``lowlevel_values`` voxel values per sample (the record says how many showers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from .._profiles import Profiles
from ..geometry.cylindrical import CylindricalGeometry
from ..metrics import calo_features, frechet, kernel
from ..metrics.dnn_classifier import DNNSettings, dnn_classifier_test
from ..metrics.null import ks_tests
from ..metrics.prdc import prdc
from ..metrics.separation import separation_power_counts, separation_power_samples
from .log import loop, prefixed
from .result import MetricValue
from .protocol import Rows
from .shared_metrics import correlations, energy_edges, model_values, shower_response
from ..data.sources import ShowerSource
from .truth_cache import TruthStore

__all__ = ["CALO_SUITE_VERSION", "CaloSuiteConfig", "calochallenge_suite", "histogram_bins"]

CALO_SUITE_VERSION = "calochallenge-1"
CNN_GEOMETRIES = ("calochallenge-2", "calochallenge-3")  # the challenge's CNN is defined for these
CNN_MIN_STEPS = 150  # fewer optimiser steps leave its BatchNorm statistics unsettled (docs/metrics-cnn.md)


_SEP = ("e_ratio", "e_layer", "ec_eta", "ec_phi", "width_eta", "width_phi", "ec_r", "width_r", "sparsity", "cell")
_FEATURE_OF = {"e_layer": "E_layer", "ec_eta": "EC_eta", "ec_phi": "EC_phi", "width_eta": "width_eta",
               "width_phi": "width_phi", "ec_r": "EC_r", "width_r": "width_r", "sparsity": "sparsity"}
_DEFS: dict[str, tuple[str, float, str]] = {
    **{f"sep_{k}": (f"separation power of the {k.replace('_', ' ')} histogram"
                    + ("s, mean over layers" if k not in ("e_ratio", "cell") else "")
                    + " (CaloChallenge binning; 0 = identical, 1 = disjoint)", 1e3, "lower") for k in _SEP},
    "fpd": ("Frechet physics distance on the high-level classifier inputs, N -> inf (CaloChallenge: jetnet fpd)", 1e3, "lower"),
    "kpd": ("kernel physics distance on the high-level classifier inputs (CaloChallenge: jetnet kpd)", 1e3, "lower"),
    "auc_low": ("DNN classifier AUC on log10 E_inc and voxels / E_inc (calibrated)", 1.0, "closer to 0.5"),
    "jsd_low": ("DNN classifier JSD = (ln 2 - BCE) / ln 2 on the low-level inputs (calibrated)", 1.0, "lower"),
    "auc_high": ("DNN classifier AUC on the high-level features (calibrated)", 1.0, "closer to 0.5"),
    "jsd_high": ("DNN classifier JSD on the high-level features (calibrated)", 1.0, "lower"),
    "response_diff": ("mean over incident-energy bins of |<E_vis/E_inc>_gen - <E_vis/E_inc>_ref| / <E_vis/E_inc>_ref "
                      "(energy response; bins: --energy-bins)", 1e2, "lower"),
    "resolution_diff": ("mean over incident-energy bins of the relative difference of the resolution "
                        "sd(E_vis/E_inc) / <E_vis/E_inc>", 1e2, "lower"),
    "corr_max": ("largest |difference| of the Pearson correlations between layer energies", 1e2, "lower"),
    "corr_mean": ("mean |difference| of the Pearson correlations between layer energies", 1e2, "lower"),
    "auc_cnn": ("CNN (3-D ResNet, the challenge's cls-resnet) classifier AUC on log10 E_inc and voxel images / "
                "E_inc (calibrated; data sets 2 and 3)", 1.0, "closer to 0.5"),
    "jsd_cnn": ("CNN classifier JSD = (ln 2 - BCE) / ln 2 on the voxel images (calibrated)", 1.0, "lower"),
    "precision": ("precision (k=5 NN balls) on log10 voxel energies", 1.0, "higher"),
    "recall": ("recall (k=5) on log10 voxel energies", 1.0, "higher"),
    "density": ("density (k=5) on log10 voxel energies (1 for identical distributions)", 1.0, "closer to 1"),
    "coverage": ("coverage (k=5) on log10 voxel energies", 1.0, "higher"),
}


@dataclass(frozen=True)
class CaloSuiteConfig(Profiles):
    """Settings; ``full`` is the challenge's (DNN 2 x 2048, 50 epochs), ``fast`` fits a CPU."""

    profile: str = "full"
    seed: int = 42
    fpd_min_samples: int = 10_000
    fpd_max_samples: int = 50_000
    fpd_batches: int = 20
    fpd_points: int = 10
    kpd_batches: int = 10
    kpd_batch_size: int = 10_000
    sep_bootstrap: int = 10
    prdc_k: int = 5
    classifier: str = "full"
    lowlevel_values: int = 200_000_000  # voxel values kept per sample for the low-level classifier and PRDC
    chunk_rows: int = 2_000
    energy_bins: str = "auto"  # bins of incident energy for the response metrics (binning.py)
    metrics: tuple[str, ...] = ()
    device: str = "cpu"  # torch device of the DNN classifiers

    SUITE: ClassVar[str] = "CaloChallenge"
    METRICS: ClassVar[tuple[str, ...]] = tuple(_DEFS)
    FAST: ClassVar[dict[str, Any]] = {
        "profile": "fast", "fpd_min_samples": 1_000, "fpd_max_samples": 5_000, "fpd_batches": 5, "fpd_points": 5,
        "kpd_batches": 5, "kpd_batch_size": 1_000, "sep_bootstrap": 5, "classifier": "fast",
        "lowlevel_values": 20_000_000}




def histogram_bins(feature: str, layer: int, geometry: CylindricalGeometry, threshold: float,
                   ref_max: float) -> np.ndarray:
    """The challenge's binning of a histogram (``evaluate_plotting_helper.py``).

    ``feature`` is one of the separation-power families; ``layer`` the layer id; ``ref_max`` the
    reference's maximum of the quantity (for the logarithmic energy binnings).
    """
    ds23 = geometry.name in ("calochallenge-2", "calochallenge-3")
    if feature == "e_ratio":
        return np.linspace(0.5, 1.5, 101)
    if feature in ("e_layer", "cell"):
        n = 40 if feature == "e_layer" else 50
        return np.logspace(np.log10(threshold), np.log10(max(ref_max, threshold * 10)), n)
    if feature == "sparsity":
        return np.linspace(0.0, 1.0, 21)
    if feature in ("ec_eta", "ec_phi"):
        lim = (-30.0, 30.0) if ds23 else ((-500.0, 500.0) if layer in (12, 13) else (-100.0, 100.0))
    elif feature in ("width_eta", "width_phi"):
        lim = (0.0, 30.0) if ds23 else ((0.0, 400.0) if layer in (12, 13) else (0.0, 100.0))
    elif feature == "ec_r":
        lim = (0.0, 42.0) if ds23 else ((0.0, 1500.0) if layer in (12, 13, 14) else (0.0, 500.0))
    elif feature == "width_r":
        lim = (0.0, 20.0) if ds23 else ((0.0, 1500.0) if layer in (12, 13, 14) else (0.0, 500.0))
    else:
        raise ValueError(f"unknown feature {feature!r}")
    return np.linspace(*lim, 101)


@dataclass
class _Summary:
    """What the suite keeps of one sample: features of every shower, the low-level subset, and
    the cell spectrum's histogram."""

    feats: dict[str, np.ndarray]
    e_inc: np.ndarray
    voxels: np.ndarray           # (m, V) thresholded, the first m showers
    cell_hist: np.ndarray | None


@dataclass(frozen=True)
class Want:
    """What a pass keeps of one set of (sorted) rows: features, the first ``keep`` showers'
    voxels, and the cell spectrum's histogram on ``cell_bins``."""

    rows: np.ndarray
    keep: int = 0
    cell_bins: np.ndarray | None = None
    features: bool = True


def summarise_voxels(src: ShowerSource, wants: dict[str, Want], geometry: CylindricalGeometry, threshold: float,
               chunk_rows: int, on_chunk=None) -> dict[str, tuple[_Summary, float]]:
    """One pass over the source for all ``wants``; each summary comes with its maximum voxel energy."""
    parts: dict[str, list[dict[str, np.ndarray]]] = {k: [] for k in wants}
    e_inc: dict[str, list[np.ndarray]] = {k: [] for k in wants}
    kept: dict[str, list[np.ndarray]] = {k: [] for k in wants}
    vmax, taken = dict.fromkeys(wants, 0.0), dict.fromkeys(wants, 0)
    hist = {k: None if w.cell_bins is None else np.zeros(len(w.cell_bins) - 1) for k, w in wants.items()}
    for key, sel, chunk in src.select({k: w.rows for k, w in wants.items()}, chunk_rows, on_chunk):
        w = wants[key]
        v = calo_features.threshold_voxels(chunk.voxels[sel], threshold)
        e = np.asarray(chunk.incident_energy[sel], np.float64)
        if w.features:
            parts[key].append(calo_features.high_level_features(v, e, geometry))
        e_inc[key].append(e)
        vmax[key] = max(vmax[key], float(v.max(initial=0.0)))
        if taken[key] < w.keep:
            kept[key].append(v[:w.keep - taken[key]])
            taken[key] += len(kept[key][-1])
        if hist[key] is not None:
            hist[key] += np.histogram(v[v > 0], w.cell_bins)[0]
    out = {}
    for key, p in parts.items():
        feats = {k: np.concatenate([q[k] for q in p]) for k in p[0]} if p else {}
        voxels = np.concatenate(kept[key]) if kept[key] else np.zeros((0, geometry.n_voxels), np.float32)
        out[key] = _Summary(feats, np.concatenate(e_inc[key]), voxels, hist[key]), vmax[key]
    return out


def _sep_family(name: str, real: _Summary, gen: _Summary, geometry: CylindricalGeometry, threshold: float,
                cfg: CaloSuiteConfig) -> tuple[float, float, list[float]]:
    """Separation power of one family: mean over its layers, error of that mean; per-layer values."""
    if name == "cell":
        v, e = separation_power_counts(real.cell_hist, gen.cell_hist, cfg.sep_bootstrap, cfg.seed)
        return v, e, []
    if name == "e_ratio":
        v, e = separation_power_samples(real.feats["E_ratio"], gen.feats["E_ratio"],
                                        histogram_bins("e_ratio", 0, geometry, threshold, 0), cfg.sep_bootstrap, cfg.seed)
        return v, e, []
    key = _FEATURE_OF[name]
    layers = calo_features.alpha_layers(geometry) if name in ("ec_eta", "ec_phi", "width_eta", "width_phi") \
        else geometry.relevant_layers
    vals, errs = [], []
    for col, lid in enumerate(layers):
        r, g = real.feats[key][:, col], gen.feats[key][:, col]
        bins = histogram_bins(name, lid, geometry, threshold, float(r.max(initial=0.0)))
        v, e = separation_power_samples(r, g, bins, cfg.sep_bootstrap, cfg.seed)
        vals.append(v)
        errs.append(e)
    return float(np.mean(vals)), float(np.sqrt(np.sum(np.square(errs))) / len(errs)), vals


def _ks_observables(summary: _Summary, geometry: CylindricalGeometry) -> dict[str, np.ndarray]:
    """The observables of the per-observable KS tests: E_vis / E_inc and each layer's energy."""
    out = {"E_ratio": summary.feats["E_ratio"]}
    out.update({f"E_layer {lid}": summary.feats["E_layer"][:, i] for i, lid in enumerate(geometry.relevant_layers)})
    return out


def _pair(gen: _Summary, real: _Summary, geometry: CylindricalGeometry, threshold: float, cfg: CaloSuiteConfig,
          step: Callable[[str], None], edges: np.ndarray) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """Every metric between one 'generated' summary and reference half A (``edges``: the
    incident-energy bins [MeV] of the response metrics)."""
    out: dict[str, tuple[float, float]] = {}
    extra: dict[str, Any] = {}

    def want(*names: str) -> bool:
        return not cfg.metrics or any(n in cfg.metrics for n in names)

    step("separation powers")
    for fam in _SEP:
        if want(f"sep_{fam}"):
            v, e, per_layer = _sep_family(fam, real, gen, geometry, threshold, cfg)
            out[f"sep_{fam}"] = (v, e)
            if per_layer:
                extra[f"sep_{fam}_per_layer"] = per_layer
    if want("response_diff", "resolution_diff"):
        step("response and resolution")
        extra["response"] = shower_response(real.feats["E_ratio"], real.e_inc, gen.feats["E_ratio"], gen.e_inc, edges,
                                            out, cfg.sep_bootstrap, cfg.seed)
    extra["ks"] = ks_tests(_ks_observables(real, geometry), _ks_observables(gen, geometry))
    if want("corr_max", "corr_mean"):
        step("layer-energy correlations")
        names = tuple(f"layer {lid}" for lid in geometry.relevant_layers)
        extra["correlation"] = correlations(real.feats["E_layer"], gen.feats["E_layer"], names, out,
                                            cfg.sep_bootstrap, cfg.seed)
    hl_real = calo_features.classifier_inputs_high(real.feats, real.e_inc)
    hl_gen = calo_features.classifier_inputs_high(gen.feats, gen.e_inc)
    if want("fpd"):
        step("FPD")
        out["fpd"] = frechet.fpd(hl_real[:, 1:], hl_gen[:, 1:], cfg.fpd_min_samples, cfg.fpd_max_samples,
                                 cfg.fpd_batches, cfg.fpd_points, seed=cfg.seed)
    if want("kpd"):
        step("KPD")
        out["kpd"] = kernel.kpd(hl_real[:, 1:], hl_gen[:, 1:], cfg.kpd_batches, cfg.kpd_batch_size, seed=cfg.seed)
    dnn = DNNSettings.named(cfg.classifier, seed=cfg.seed, device=cfg.device)
    m = min(len(real.voxels), len(gen.voxels))
    if want("auc_low", "jsd_low"):
        step("low-level classifier")
        r = dnn_classifier_test(calo_features.classifier_inputs_low(real.voxels[:m], real.e_inc[:m]),
                                calo_features.classifier_inputs_low(gen.voxels[:m], gen.e_inc[:m]), dnn,
                                loop(step, "low-level classifier, epochs", dnn.epochs))
        out["auc_low"], out["jsd_low"] = (r.auc, r.auc_error), (r.jsd, r.jsd_error)
        extra["classifier_low"] = {"best_epoch": r.best_epoch, "n_per_class": r.n_per_class,
                                   "auc_uncalibrated": r.auc_uncalibrated}
    if want("auc_high", "jsd_high"):
        step("high-level classifier")
        r = dnn_classifier_test(hl_real, hl_gen, dnn, loop(step, "high-level classifier, epochs", dnn.epochs))
        out["auc_high"], out["jsd_high"] = (r.auc, r.auc_error), (r.jsd, r.jsd_error)
        extra["classifier_high"] = {"best_epoch": r.best_epoch, "n_per_class": r.n_per_class,
                                    "auc_uncalibrated": r.auc_uncalibrated}
    if want("auc_cnn", "jsd_cnn") and geometry.name in CNN_GEOMETRIES:
        from ..metrics.cnn_classifier import CNNSettings, cnn_classifier_test

        step("CNN classifier")
        cnn = CNNSettings.named(cfg.classifier, seed=cfg.seed, device=cfg.device)
        r = cnn_classifier_test(real.voxels[:m], real.e_inc[:m], gen.voxels[:m], gen.e_inc[:m], geometry, cnn,
                                loop(step, "CNN classifier, epochs", cnn.epochs))
        steps = r.steps_per_epoch * cnn.epochs
        extra["classifier_cnn"] = {"best_epoch": r.best_epoch, "n_per_class": r.n_per_class,
                                   "auc_uncalibrated": r.auc_uncalibrated, "steps_per_epoch": r.steps_per_epoch,
                                   "settled": steps >= CNN_MIN_STEPS}
        if steps >= CNN_MIN_STEPS:
            out["auc_cnn"], out["jsd_cnn"] = (r.auc, r.auc_error), (r.jsd, r.jsd_error)
        else:  # a number that means nothing is not reported (kept in the details, labelled)
            nan = float("nan")
            out["auc_cnn"], out["jsd_cnn"] = (nan, nan), (nan, nan)
            extra["classifier_cnn"].update(unsettled_auc=r.auc, unsettled_jsd=r.jsd, not_reported=(
                f"{steps} optimiser steps (< {CNN_MIN_STEPS}): the CNN's BatchNorm statistics are unsettled"))
            step(f"CNN classifier not reported: {extra['classifier_cnn']['not_reported']}")
    if want("precision", "recall", "density", "coverage"):
        step("precision, recall, density, coverage")
        lr = np.log10(np.where(real.voxels[:m] == 0, 0.1, real.voxels[:m]))
        lg = np.log10(np.where(gen.voxels[:m] == 0, 0.1, gen.voxels[:m]))
        out.update(prdc(lr, lg, cfg.prdc_k))
    return out, extra


def calochallenge_suite(gen: ShowerSource, reference: ShowerSource, rows: Rows, geometry: CylindricalGeometry,
                        cfg: CaloSuiteConfig = CaloSuiteConfig(), progress: Callable[[str], None] | None = None,
                        truth: ShowerSource | None = None, store: TruthStore | None = None,
                        model: bool = True) -> tuple[dict[str, MetricValue], dict[str, Any], dict[str, Any]]:
    """Run the suite: generated rows ``rows.gen`` against reference rows ``rows.ref`` (the model
    row), and the truth rows ``rows.truth`` against the same reference rows (the truth row).

    The truth rows are in ``truth`` (a disjoint file: the papers' protocol), else in the reference
    itself (its other half).  ``store`` keeps the truth row on disk.  Returns the metrics, the
    settings used, and the summaries (``gen``, ``real``) for plots.  ``model=False``: the truth
    row alone (values NaN; for null distributions, ``null.py``).
    """
    step = progress or (lambda _m: None)
    if {"auc_cnn", "jsd_cnn"} & set(cfg.metrics) and geometry.name not in CNN_GEOMETRIES:
        from ..errors import MetricError

        raise MetricError(f"auc_cnn / jsd_cnn were requested, but the CaloChallenge CNN is defined for "
                          f"{' and '.join(CNN_GEOMETRIES)}, not {geometry.name}")
    threshold = calo_features.THRESHOLDS_MEV.get(geometry.name, 0.0)
    keep = max(10, cfg.lowlevel_values // geometry.n_voxels)
    step("reference features")
    chunks = reference.n_chunks(cfg.chunk_rows)
    a, ref_max = summarise_voxels(reference, {"a": Want(rows.ref, keep)}, geometry, threshold, cfg.chunk_rows,
                            loop(step, "chunks, first pass", chunks))["a"]
    cell_bins = histogram_bins("cell", 0, geometry, threshold, ref_max)
    # the cell spectrum's bins need the reference's maximum: a second pass histograms its cells
    a.cell_hist = summarise_voxels(reference, {"a": Want(rows.ref, cell_bins=cell_bins, features=False)}, geometry,
                             threshold, cfg.chunk_rows, loop(step, "chunks, second pass", chunks))["a"][0].cell_hist
    edges = energy_edges(a.e_inc, cfg.energy_bins)
    g, values, extra = None, None, {}
    if model:
        step("generated features")
        g = summarise_voxels(gen, {"g": Want(rows.gen, keep, cell_bins)}, geometry, threshold, cfg.chunk_rows,
                       loop(step, "chunks", gen.n_chunks(cfg.chunk_rows)))["g"][0]
        values, extra = _pair(g, a, geometry, threshold, cfg, prefixed(progress, "model vs reference"), edges)

    def truth_row() -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
        src = truth or reference
        step("truth-sample features")
        b = summarise_voxels(src, {"b": Want(rows.truth, keep, cell_bins)}, geometry, threshold, cfg.chunk_rows,
                       loop(step, "chunks", src.n_chunks(cfg.chunk_rows)))["b"][0]
        return _pair(b, a, geometry, threshold, cfg, prefixed(progress, "truth vs truth"), edges)

    key = {"suite_version": CALO_SUITE_VERSION, "config": asdict(cfg), "geometry": geometry.name,
           **rows.identity()}
    truth_values, truth_extra = (store or TruthStore(None)).get_or_compute(key, truth_row)
    metrics = {name: MetricValue(name, v, e, *_DEFS[name][:2], truth_values[name][0], truth_values[name][1],
                                 _DEFS[name][2]) for name, (v, e) in model_values(values, truth_values).items()}
    settings = {"suite_version": CALO_SUITE_VERSION, "n_showers": rows.n, "geometry": geometry.name,
                "protocol": rows.protocol(), "threshold_mev": threshold,
                "lowlevel_showers": int(min(len(a.voxels), len(a.voxels if g is None else g.voxels))),
                "classifier": cfg.classifier, "config": asdict(cfg), "details": extra, "truth_details": truth_extra}
    return metrics, settings, {"gen": g, "real": a, "cell_bins": cell_bins, "threshold": threshold}
