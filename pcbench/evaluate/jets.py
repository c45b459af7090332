"""The jet metric suite: the JetNet papers' metrics, substructure and classifiers, with errors.

Every metric is computed twice with the same settings: the generated jets against the reference
(the model row), and a disjoint real sample against the same reference (the truth row, what
"perfect" looks like); which samples, at which sizes, is the protocol (``protocol.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from .._profiles import Profiles
from ..data import JetSet
from ..metrics import classifier, divergence, emd, frechet, jet_observables, kernel, wasserstein
from ..errors import IncompatibleError, MetricError
from .log import loop, prefixed
from ..metrics.null import ks_tests
from .protocol import Rows, half_rows, split_rows
from .result import MetricValue
from .shared_metrics import correlations, model_values
from .truth_cache import TruthStore

__all__ = ["JET_SUITE_VERSION", "MIN_JETS", "JetSuiteConfig", "jet_features", "jet_rows", "jet_suite",
           "fpnd_unavailable"]

JET_SUITE_VERSION = "jets-1"
MIN_JETS = 10  # fewest generated jets (and half the fewest reference jets) the suite accepts


_DEFS: dict[str, tuple[str, float, str]] = {
    "w1m": ("W1 of the relative jet mass m/pT_jet (jetnet w1m)", 1e3, "lower"),
    "w1p": ("W1 of particle etarel, phirel, ptrel, mean over the 3 (jetnet w1p)", 1e3, "lower"),
    "w1efp": ("W1 of the 5 EFPs with n=4, d=4, prime, mean (jetnet w1efp)", 1e5, "lower"),
    "fpd": ("Frechet physics distance on the 36 EFPs d<=4, N -> inf (jetnet fpd)", 1e3, "lower"),
    "kpd": ("kernel physics distance on the 36 EFPs d<=4 (jetnet kpd)", 1e3, "lower"),
    "cov": ("coverage: fraction of real jets nearest (EMD) to some generated jet (jetnet cov_mmd)", 1.0, "higher"),
    "mmd": ("minimum matching distance: mean EMD [relative pT] of a real jet to its nearest generated jet (jetnet cov_mmd)", 1.0, "lower"),
    "fpnd": ("Frechet ParticleNet distance to real JetNet30 statistics (jetnet fpnd; no error defined)", 1.0, "lower"),
    "w1_tau21": ("W1 of tau21 (exclusive-kT axes, beta=1)", 1e3, "lower"),
    "w1_tau32": ("W1 of tau32 (exclusive-kT axes, beta=1)", 1e3, "lower"),
    "kl_mass": ("KL(real||gen) of the relative jet mass, 50 bins", 1e3, "lower"),
    "kl_ptconst": ("KL(real||gen) of the constituents' ptrel, 50 bins", 1e3, "lower"),
    "kl_tau21": ("KL(real||gen) of tau21, 50 bins", 1e3, "lower"),
    "kl_tau32": ("KL(real||gen) of tau32, 50 bins", 1e3, "lower"),
    "auc_hl": ("ROC AUC of boosted trees on m, pT, multiplicity, tau21, tau32, 36 EFPs (k-fold)", 1.0, "closer to 0.5"),
    "auc_pl": ("ROC AUC of a Deep Sets network on the constituents (k-fold)", 1.0, "closer to 0.5"),
    "corr_max": ("largest |difference| of the Pearson correlations between m/pT, pT, multiplicity, tau21, tau32 and "
                 "the 5 EFPs of w1efp", 1e2, "lower"),
    "corr_mean": ("mean |difference| of the Pearson correlations between the same 10 jet observables", 1e2, "lower"),
}
CORRELATED = ("mass", "pt", "multiplicity", "tau21", "tau32")  # with the w1efp EFPs: the correlation metrics' inputs
KS_OBSERVABLES = ("mass", "multiplicity", "tau21", "tau32")  # per-observable KS tests (record details)


@dataclass(frozen=True)
class JetSuiteConfig(Profiles):
    """Settings of the jet suite; ``full`` follows the jetnet library's defaults exactly."""

    profile: str = "full"
    seed: int = 42
    w1_samples: int = 50_000
    w1_batches: int = 5
    fpd_min_samples: int = 20_000
    fpd_max_samples: int = 50_000
    fpd_batches: int = 20
    fpd_points: int = 10
    kpd_batches: int = 10
    kpd_batch_size: int = 5_000
    cov_samples: int = 100
    cov_batches: int = 10
    fpnd: bool = True
    kl_bins: int = 50
    kl_bootstrap: int = 10
    classifier_folds: int = 5
    classifier_max_jets: int = 20_000
    deepsets_epochs: int = 10
    metrics: tuple[str, ...] = ()  # the metrics to compute; empty: all
    device: str = "cpu"  # torch device of the EFPs, FPND and the Deep Sets classifier

    SUITE: ClassVar[str] = "jet"
    METRICS: ClassVar[tuple[str, ...]] = tuple(_DEFS)
    FAST: ClassVar[dict[str, Any]] = {  # small batches for tests and the demo
        "profile": "fast", "w1_samples": 10_000, "fpd_min_samples": 2_000, "fpd_max_samples": 5_000, "fpd_batches": 5,
        "fpd_points": 5, "kpd_batches": 5, "kpd_batch_size": 1_000, "cov_samples": 50, "cov_batches": 5,
        "kl_bootstrap": 5, "classifier_folds": 3, "classifier_max_jets": 4_000, "deepsets_epochs": 4}


def jet_features(jets: JetSet, device: str = "cpu", chunk: int = 4096) -> dict[str, np.ndarray]:
    """Every observable the suite needs, computed once: kinematics, 36 EFPs (d <= 4), tau21, tau32.

    Every observable is a function of one jet, so they are computed ``chunk`` jets at a time: the
    per-particle temporaries stay at one chunk's whatever N, with the same bits."""
    parts = []
    for lo in range(0, max(len(jets), 1), chunk):
        p, m = jets.particles[lo:lo + chunk], jets.mask[lo:lo + chunk]
        feats = jet_observables.jet_kinematics(p, m)
        feats["efps"] = jet_observables.efps(p, m, device=device)
        feats.update(jet_observables.tau_ratios(p, m))
        parts.append(feats)
    return {k: np.concatenate([f[k] for f in parts]) for k in parts[0]}


def _mean_and_rss(means: np.ndarray, stds: np.ndarray) -> tuple[float, float]:
    """Average over features, error the root-sum-square of their stds (as the EPiC-GAN / MP-GAN code)."""
    return float(np.mean(means)), float(np.linalg.norm(stds))


def hl_matrix(f: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([f["mass"], f["pt"], f["multiplicity"], f["tau21"], f["tau32"], f["efps"]])




def _correlated(f: dict[str, np.ndarray]) -> np.ndarray:
    """The observables whose correlations are compared: (n, 10)."""
    return np.column_stack([f[k] for k in CORRELATED] + [f["efps"][:, jet_observables.EFP_W1_INDICES()]])


def _correlated_names() -> tuple[str, ...]:
    return (*CORRELATED, *(f"EFP {i}" for i in jet_observables.EFP_W1_INDICES()))


def _pair(gen: JetSet, gf: dict[str, np.ndarray], real: JetSet, rf: dict[str, np.ndarray],
          cfg: JetSuiteConfig, fpnd_type: str | None,
          step: Callable[[str], None], extra: dict[str, Any] | None = None) -> dict[str, tuple[float, float]]:
    """Every metric between one 'generated' and one real sample: {name: (value, error)};
    ``extra`` receives the details (the correlation difference matrix)."""
    s = cfg.seed
    out: dict[str, tuple[float, float]] = {}

    def want(*names: str) -> bool:
        return not cfg.metrics or any(n in cfg.metrics for n in names)

    def w1(a: np.ndarray, b: np.ndarray, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
        return wasserstein.w1_batched(a, b, cfg.w1_samples, cfg.w1_batches, seed=s, **kw)

    step("W1")
    if want("w1m"):
        m, e = w1(rf["mass"][:, None], gf["mass"][:, None])
        out["w1m"] = (float(m[0]), float(e[0]))
    if want("w1p"):
        out["w1p"] = _mean_and_rss(*w1(real.particles, gen.particles, real_mask=real.mask, gen_mask=gen.mask))
    if want("w1efp"):
        idx = jet_observables.EFP_W1_INDICES()
        out["w1efp"] = _mean_and_rss(*w1(rf["efps"][:, idx], gf["efps"][:, idx]))
    for t in ("tau21", "tau32"):
        if want(f"w1_{t}"):
            m, e = w1(rf[t][:, None], gf[t][:, None])
            out[f"w1_{t}"] = (float(m[0]), float(e[0]))
    step("FPD, KPD")
    if want("fpd"):
        out["fpd"] = frechet.fpd(rf["efps"], gf["efps"], cfg.fpd_min_samples, cfg.fpd_max_samples,
                                 cfg.fpd_batches, cfg.fpd_points, seed=s)
    if want("kpd"):
        out["kpd"] = kernel.kpd(rf["efps"], gf["efps"], cfg.kpd_batches, cfg.kpd_batch_size, seed=s)
    if want("cov", "mmd"):
        step("COV, MMD")
        out["cov"], out["mmd"] = emd.cov_mmd(real.particles, gen.particles, cfg.cov_samples, cfg.cov_batches, seed=s)
    if fpnd_type is not None and want("fpnd"):
        from ..metrics import fpnd

        step("FPND")
        out["fpnd"] = (fpnd.fpnd(gen.particles, fpnd_type, device=cfg.device), float("nan"))
    step("KL")
    kl = {"kl_mass": (rf["mass"], gf["mass"]), "kl_ptconst": (real.particles[..., 2][real.mask], gen.particles[..., 2][gen.mask]),
          "kl_tau21": (rf["tau21"], gf["tau21"]), "kl_tau32": (rf["tau32"], gf["tau32"])}
    for name, (a, b) in kl.items():
        if want(name):
            out[name] = divergence.kl_divergence_bootstrap(a, b, cfg.kl_bootstrap, s, cfg.kl_bins)
    if want("corr_max", "corr_mean"):
        step("correlations")
        details = correlations(_correlated(rf), _correlated(gf), _correlated_names(), out, cfg.kl_bootstrap, s)
        if extra is not None:
            extra["correlation"] = details
    step("classifiers")
    n = min(cfg.classifier_max_jets, len(real), len(gen))
    if want("auc_hl"):
        out["auc_hl"] = classifier.hl_classifier_auc(hl_matrix(rf)[:n], hl_matrix(gf)[:n], cfg.classifier_folds, s,
                                                     loop(step, "boosted trees, folds", cfg.classifier_folds))[:2]
    if want("auc_pl"):
        out["auc_pl"] = classifier.deepsets_classifier_auc(real.particle_features[:n], gen.particle_features[:n],
                                                           cfg.classifier_folds, s, epochs=cfg.deepsets_epochs,
                                                           device=cfg.device,
                                                           on_fold=loop(step, "Deep Sets, folds", cfg.classifier_folds))[:2]
    return out


def jet_rows(n_gen: int, reference: JetSet, truth: JetSet | None, seed: int, truth_from: str) -> Rows:
    """The protocol's rows (``protocol.py``): the reference's halves without ``truth``, else the
    papers' split protocol with ``truth`` the disjoint sample."""
    if truth is None:
        return half_rows(n_gen, len(reference), seed, MIN_JETS, "jets")
    return split_rows(n_gen, len(reference), len(truth), seed, truth_from, MIN_JETS, "jets")


def jet_suite(gen: JetSet, reference: JetSet, cfg: JetSuiteConfig = JetSuiteConfig(),
              jet_type: str | None = None, progress: Callable[[str], None] | None = None,
              truth: JetSet | None = None, truth_from: str = "a disjoint sample",
              store: TruthStore | None = None, rows: Rows | None = None, model: bool = True,
              ) -> tuple[dict[str, MetricValue], dict[str, Any], dict[str, Any]]:
    """Run the suite; returns the metrics, the settings actually used (sizes, seeds, config, the
    protocol), and the samples compared with their features (``gen``, ``real``: (JetSet,
    features)) for plots, with the protocol's ``rows``.

    With ``truth`` (a disjoint real sample, e.g. another split: the papers' protocol) every
    generated jet is compared with the whole ``reference`` and the truth row is
    min(N_gen, N_truth) jets of ``truth`` against the same reference; without it the reference is
    cut into halves (``protocol.half_rows``); ``rows`` overrides that choice (null draws).
    ``store`` keeps the truth row on disk.  ``model=False``: the truth row alone (values NaN).
    """
    if gen.num_particles != reference.num_particles or (truth is not None and truth.num_particles != reference.num_particles):
        raise IncompatibleError(f"the generated jets have {gen.num_particles} particle slots, the reference "
                                f"{reference.num_particles}" + ("" if truth is None else f", the truth sample "
                                                                f"{truth.num_particles}") + ": evaluate against "
                                "the data set with the same particle count (jetnet30: 30, jetnet150: 150)")
    rows = rows or jet_rows(len(gen), reference, truth, cfg.seed, truth_from)
    truth_set = (reference if truth is None else truth).subset(rows.truth)
    real_a, gen_n = reference.subset(rows.ref), gen.subset(rows.gen)
    step = progress or (lambda _msg: None)
    step("features")
    fa = jet_features(real_a, cfg.device)
    fpnd_type, fpnd_reason = None, fpnd_unavailable(gen.num_particles, jet_type) if cfg.fpnd else "switched off"
    if fpnd_reason is None:
        fpnd_type = jet_type
    elif "fpnd" in cfg.metrics:
        raise MetricError(f"fpnd was requested but cannot be computed: {fpnd_reason}")
    values, fg, extra = None, None, {}
    if model:
        fg = jet_features(gen_n, cfg.device)
        extra = {"ks": ks_tests({k: fa[k] for k in KS_OBSERVABLES}, {k: fg[k] for k in KS_OBSERVABLES})}
        values = _pair(gen_n, fg, real_a, fa, cfg, fpnd_type, prefixed(progress, "model vs reference"), extra)

    def truth_row() -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
        ft = jet_features(truth_set, cfg.device)
        details = {"ks": ks_tests({k: fa[k] for k in KS_OBSERVABLES}, {k: ft[k] for k in KS_OBSERVABLES})}
        return _pair(truth_set, ft, real_a, fa, cfg, fpnd_type, prefixed(progress, "truth vs truth"), details), details

    key = {"suite_version": JET_SUITE_VERSION, "config": asdict(cfg), "fpnd_type": fpnd_type,
           **rows.identity()}
    truth_values, truth_extra = (store or TruthStore(None)).get_or_compute(key, truth_row)
    metrics = {}
    for name, (value, error) in model_values(values, truth_values).items():
        definition, scale, better = _DEFS[name]
        metrics[name] = MetricValue(name, value, error, definition, scale, truth_values[name][0],
                                    truth_values[name][1], better)
    settings = {"suite_version": JET_SUITE_VERSION, "n_jets": rows.n, "config": asdict(cfg),
                "protocol": rows.protocol(), "jet_type": jet_type,
                "fpnd": "computed" if fpnd_type else f"skipped: {fpnd_reason}",
                "details": extra, "truth_details": truth_extra}
    return metrics, settings, {"gen": (gen_n, fg), "real": (real_a, fa), "rows": rows}


def fpnd_unavailable(num_particles: int, jet_type: str | None) -> str | None:
    """Why FPND cannot be computed for these jets (None: it can).

    FPND compares ParticleNet activations with the real JetNet30 statistics that the jetnet
    0.2.5 wheel ships, for 30-particle g, q and t jets only.
    """
    if num_particles != 30:
        return f"FPND is defined for 30-particle jets (JetNet30); these have {num_particles} slots"
    if jet_type is None:
        return ("the jet class is unknown (no jet_type dataset or attribute in the reference or the samples, and no "
                "g/q/t file name): pass --jet-type g|q|t")
    if jet_type not in ("g", "q", "t"):
        return f"real JetNet statistics exist for g, q and t jets only, not {jet_type!r}"
    from ..metrics import fpnd

    try:
        fpnd.fpnd_resources()
    except Exception as exc:  # noqa: BLE001 - the reason is reported, with the install command
        return f"the jetnet 0.2.5 wheel's ParticleNet weights are missing ({exc}); pip install --no-deps jetnet==0.2.5"
    return None


