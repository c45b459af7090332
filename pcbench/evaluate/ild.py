"""The ILD / CaloClouds metric suite for point-cloud showers: projection onto the ILD grid with the
0.1 MeV threshold, the CaloClouds II observables and W1 table, and a high-level DNN classifier,
streamed over the files, with errors and the truth-vs-truth column."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from .._profiles import Profiles
from ..geometry import project
from ..geometry.grid import LayeredGrid
from ..metrics import ild_observables as ild
from ..metrics.null import ks_tests
from ..metrics.dnn_classifier import DNNSettings, dnn_classifier_test
from .log import loop, prefixed
from .result import MetricValue
from .protocol import Rows
from .shared_metrics import correlations, energy_edges, model_values, shower_response
from ..data.sources import ShowerSource
from .truth_cache import TruthStore

__all__ = ["ILD_SUITE_VERSION", "ILDSuiteConfig", "ild_suite", "summarise_points"]

ILD_SUITE_VERSION = "ild-1"


_DEFS = {
    "w1_n_hits": "W1 of the number of cell hits above threshold (CaloClouds II N_hits)",
    "w1_e_ratio": "W1 of E_vis / E_inc (CaloClouds II)",
    "w1_e_cell": "W1 of the cell energies (the first N hits, as the reference code)",
    "w1_e_long": "W1 of the energies of 10 layer groups, mean, stds in quadrature (CaloClouds II E_long)",
    "w1_e_radial": "W1 of the energies in 10 radial rings, mean, stds in quadrature (CaloClouds II E_radial)",
    "w1_cog_x": "W1 of the centre of gravity in x (m1,X)",
    "w1_cog_y": "W1 of the centre of gravity in y, the depth (the paper's m1,Z)",
    "w1_cog_z": "W1 of the centre of gravity in z (the paper's m1,Y)",
}
_KS = ("e_ratio", "n_hits", "cog_x", "cog_y", "cog_z")  # per-observable KS tests (record details)
_SHARED = {  # definition, customary scale
    "response_diff": ("mean over incident-energy bins of |<E_vis/E_inc>_gen - <E_vis/E_inc>_ref| / <E_vis/E_inc>_ref "
                      "(energy response; bins: --energy-bins)", 1e2),
    "resolution_diff": ("mean over incident-energy bins of the relative difference of the resolution "
                        "sd(E_vis/E_inc) / <E_vis/E_inc>", 1e2),
    "corr_max": ("largest |difference| of the Pearson correlations between the 30 layer energies", 1e2),
    "corr_mean": ("mean |difference| of the Pearson correlations between the 30 layer energies", 1e2),
}


@dataclass(frozen=True)
class ILDSuiteConfig(Profiles):
    """Settings: the CaloClouds II W1 protocol (5 batches of 10,000, normalised by the real
    maximum) and the classifier; batches shrink to fit smaller samples (recorded)."""

    profile: str = "full"
    seed: int = 42
    w1_batches: int = 5
    w1_batch_size: int = 10_000
    normalisation: str = "max"
    classifier: str = "full"
    threshold_mev: float | None = None  # None: the geometry's (0.1 MeV)
    chunk_rows: int = 2_000
    energy_bins: str = "auto"  # bins of incident energy for the response metrics (binning.py)
    bootstrap: int = 10  # resamplings for the errors of the response and correlation metrics
    max_cells_kept: int = 5_000_000  # cell energies kept per sample for plots
    metrics: tuple[str, ...] = ()
    device: str = "cpu"  # torch device of the DNN classifier

    SUITE: ClassVar[str] = "ILD / CaloClouds"
    METRICS: ClassVar[tuple[str, ...]] = (*_DEFS, *_SHARED, "auc_high", "jsd_high")
    FAST: ClassVar[dict[str, Any]] = {"profile": "fast", "classifier": "fast"}




def summarise_points(src: ShowerSource, row_sets: dict[str, np.ndarray], grid: LayeredGrid, threshold: float,
                     chunk_rows: int, max_cells: int, on_chunk=None) -> dict[str, dict[str, np.ndarray]]:
    """Project the source's rows chunk by chunk, in one pass for all ``row_sets``, and keep each
    set's per-shower observables (and up to ``max_cells`` cell energies)."""
    parts: dict[str, list[dict[str, np.ndarray]]] = {k: [] for k in row_sets}
    cells: dict[str, list[np.ndarray]] = {k: [] for k in row_sets}
    kept = dict.fromkeys(row_sets, 0)
    for key, sel, chunk in src.select(row_sets, chunk_rows, on_chunk):
        proj = project(chunk.points[sel], grid, chunk.mask[sel], threshold=threshold, output="sparse")
        obs = ild.ild_observables(proj.hits, np.asarray(chunk.incident_energy[sel], np.float64), grid)
        obs["incident_energy"] = np.asarray(chunk.incident_energy[sel], np.float64)
        obs["outside_energy"] = proj.outside_energy
        if kept[key] < max_cells:
            cells[key].append(obs["e_cell"][:max_cells - kept[key]])
            kept[key] += len(cells[key][-1])
        del obs["e_cell"]
        parts[key].append(obs)
    out = {}
    for key, p in parts.items():
        out[key] = {k: np.concatenate([q[k] for q in p]) for k in p[0]}
        out[key]["e_cell_all"] = np.concatenate(cells[key])
    return out


def _matrix(obs: dict[str, np.ndarray]) -> np.ndarray:
    """The scored observables; E_cell takes the first N cell energies of the whole sample."""
    n = len(obs["n_hits"])
    return ild.observable_matrix({**obs, "e_cell": obs["e_cell_all"][:n]})


def classifier_inputs(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Per-shower high-level inputs: log10 E_inc, the 25 per-shower observables (no E_cell)."""
    m = _matrix(obs)
    x = np.column_stack([np.log10(obs["incident_energy"]), np.delete(m, 5, axis=1)])
    x = x[np.isfinite(x).all(1)]
    return x


def _pair(gen: dict[str, np.ndarray], real: dict[str, np.ndarray], cfg: ILDSuiteConfig, batch_size: int,
          step: Callable[[str], None], edges: np.ndarray) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """Every metric between one 'generated' and the reference summary (``edges``: incident-energy
    bins [MeV] of the response metrics)."""
    out: dict[str, tuple[float, float]] = {}

    def want(*names: str) -> bool:
        return not cfg.metrics or any(n in cfg.metrics for n in names)

    step("W1 scores")
    if any(want(k) for k in _DEFS):
        scores = ild.w1_scores(_matrix(real), _matrix(gen), cfg.w1_batches, batch_size, cfg.normalisation)
        out.update({f"w1_{k}": v for k, v in scores.items() if want(f"w1_{k}")})
    extra: dict[str, Any] = {"ks": ks_tests({k: real[k] for k in _KS}, {k: gen[k] for k in _KS})}
    if want("response_diff", "resolution_diff"):
        step("response and resolution")
        extra["response"] = shower_response(real["e_ratio"], real["incident_energy"], gen["e_ratio"],
                                            gen["incident_energy"], edges, out, cfg.bootstrap, cfg.seed)
    if want("corr_max", "corr_mean"):
        step("layer-energy correlations")
        names = tuple(f"layer {i}" for i in range(real["e_layer"].shape[1]))
        extra["correlation"] = correlations(real["e_layer"], gen["e_layer"], names, out, cfg.bootstrap, cfg.seed)
    if want("auc_high", "jsd_high"):
        step("high-level classifier")
        dnn = DNNSettings.named(cfg.classifier, seed=cfg.seed, device=cfg.device)
        xr, xg = classifier_inputs(real), classifier_inputs(gen)
        mu, sd = xr.mean(0), np.where(xr.std(0) == 0, 1, xr.std(0))
        r = dnn_classifier_test((xr - mu) / sd, (xg - mu) / sd, dnn, loop(step, "classifier, epochs", dnn.epochs))
        out["auc_high"], out["jsd_high"] = (r.auc, r.auc_error), (r.jsd, r.jsd_error)
        extra["classifier_high"] = {"best_epoch": r.best_epoch, "n_per_class": r.n_per_class,
                                    "auc_uncalibrated": r.auc_uncalibrated}
    return out, extra


def ild_suite(gen: ShowerSource, reference: ShowerSource, rows: Rows, grid: LayeredGrid,
              cfg: ILDSuiteConfig = ILDSuiteConfig(), progress: Callable[[str], None] | None = None,
              truth: ShowerSource | None = None, store: TruthStore | None = None,
              model: bool = True) -> tuple[dict[str, MetricValue], dict[str, Any], dict[str, Any]]:
    """Run the suite: generated rows against the reference rows (the model row), and the truth
    rows (in ``truth``, a disjoint file, else in the reference: its other half) against the same
    reference rows (the truth row); ``store`` keeps the truth row on disk.  ``model=False``: the
    truth row alone (values NaN; for null distributions)."""
    step = progress or (lambda _m: None)
    threshold = grid.threshold if cfg.threshold_mev is None else cfg.threshold_mev
    step("projecting the reference")
    a = summarise_points(reference, {"a": rows.ref}, grid, threshold, cfg.chunk_rows, cfg.max_cells_kept,
                         loop(step, "chunks", reference.n_chunks(cfg.chunk_rows)))["a"]
    # the CaloClouds II batches (5 x 10,000), cut to fit the smallest sample
    batch_size = min(cfg.w1_batch_size, min(len(rows.gen), len(rows.ref), len(rows.truth)) // cfg.w1_batches)
    edges = energy_edges(a["incident_energy"], cfg.energy_bins)
    g, values, extra = None, None, {}
    if model:
        step("projecting the generated showers")
        g = summarise_points(gen, {"g": rows.gen}, grid, threshold, cfg.chunk_rows, cfg.max_cells_kept,
                             loop(step, "chunks", gen.n_chunks(cfg.chunk_rows)))["g"]
        values, extra = _pair(g, a, cfg, batch_size, prefixed(progress, "model vs reference"), edges)

    def truth_row() -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
        src = truth or reference
        step("projecting the truth sample")
        b = summarise_points(src, {"b": rows.truth}, grid, threshold, cfg.chunk_rows, cfg.max_cells_kept,
                             loop(step, "chunks", src.n_chunks(cfg.chunk_rows)))["b"]
        return _pair(b, a, cfg, batch_size, prefixed(progress, "truth vs truth"), edges)

    key = {"suite_version": ILD_SUITE_VERSION, "config": asdict(cfg), "geometry": grid.name, "batch_size": batch_size,
           **rows.identity()}
    truth_values, truth_extra = (store or TruthStore(None)).get_or_compute(key, truth_row)
    defs = {**_DEFS, **{k: d for k, (d, _) in _SHARED.items()}, "auc_high": "DNN classifier AUC on log10 E_inc and the 25 per-shower observables (calibrated)",
            "jsd_high": "DNN classifier JSD = (ln 2 - BCE) / ln 2 on the same inputs (calibrated)"}
    metrics = {}
    for name, (v, e) in model_values(values, truth_values).items():
        scale, better = (1e3, "lower") if name.startswith("w1_") else \
            (_SHARED[name][1], "lower") if name in _SHARED else (1.0, "closer to 0.5" if name == "auc_high" else "lower")
        metrics[name] = MetricValue(name, v, e, defs[name], scale, truth_values[name][0], truth_values[name][1],
                                    better)
    settings = {"suite_version": ILD_SUITE_VERSION, "n_showers": rows.n, "geometry": grid.name,
                "protocol": rows.protocol(),
                "threshold_mev": threshold, "w1_batches": cfg.w1_batches, "w1_batch_size": batch_size,
                "normalisation": cfg.normalisation, "classifier": cfg.classifier, "config": asdict(cfg),
                "details": extra, "truth_details": truth_extra,
                **({} if g is None else {"mean_outside_energy_mev": float(g["outside_energy"].mean()),
                                         "empty_generated_showers": int(np.sum(g["n_hits"] == 0))})}
    return metrics, settings, {"gen": g, "real": a}
