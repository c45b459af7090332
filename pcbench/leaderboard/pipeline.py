"""A leaderboard run from a config: data -> train -> sample -> evaluate -> tables, for jets and
showers alike.

The same function serves the demo (``pcbench demo``), the committed tables
(``pcbench leaderboard run``) and their reproduction (``pcbench leaderboard reproduce``).  The
config's schema is ``config.py`` (``leaderboard/smoke/config.yaml`` for jets,
``leaderboard/smoke-showers/config.yaml`` for showers).  Every model is evaluated on the papers'
protocol: against the whole test split, the truth row from the training split (``docs/protocol.md``).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import torch
from threadpoolctl import threadpool_limits

from .._platform import platform_fingerprint
from ..data import Cache, default_registry, load, read, write
from ..data.formats import read_attrs
from ..data.loaders import split_indices
from ..data.simulate import JET_TARGETS, JetSimConfig, simulate
from ..evaluate import EvaluationResult, evaluate
from .config import DataConfig, LeaderboardConfig, ModelEntry, load_config, parse_config
from .published import published_rows
from .store import write_tables
from .tables import build_tables

__all__ = ["load_config", "run_pipeline", "platform_fingerprint"]


@dataclass(frozen=True)
class _Data:
    """A benchmark's data: the training set, the validation set (jets), what evaluate compares
    with (a file of the test split, or a registry name) and the truth sample (a file of the train
    split, or ``auto`` for a registry name), and the benchmark's name."""

    train: Any
    valid: Any
    reference: str
    truth: str
    name: str
    n_reference: int


def _split_files(data: Any, work: Path, name: str) -> _Data:
    """jetnet's 70/15/15 convention applied to ``data``; the test split written as the reference
    file, the train split as the truth file."""
    train_set, valid, test = (data.subset(split_indices(len(data), s)) for s in ("train", "valid", "test"))
    return _Data(train_set, valid, str(write(work / "reference.h5", test)), str(write(work / "truth.h5", train_set)),
                 name, len(test))


def _data(cfg: LeaderboardConfig, work: Path, cache: Cache, progress: bool) -> _Data:
    """The papers' protocol: every model against the whole test split, the truth row a disjoint
    sample (the training split) of the same data against the same test split."""
    d = cfg.data
    if d.simulate in JET_TARGETS:
        sim = JetSimConfig(d.jet_type, num_particles=JET_TARGETS[d.simulate])
        return _split_files(read(_simulated_jets(d, sim, work, cache, progress)), work,
                            f"{d.simulate}-sim:{sim.jet_type} (n={d.n}, seed={d.seed})")
    if d.simulate is not None:
        path = work / "data.h5"
        if not _same_simulation(path, d):
            simulate(d.simulate, int(d.n), d.seed, output=path, workers=d.workers, progress=progress)
        return _split_files(read(path), work, f"{d.simulate}-param (n={d.n}, seed={d.seed}; PARAMETERISED)")
    if cfg.kind == "jets":
        train_set, valid, test = (load(d.dataset, s, cache) for s in ("train", "valid", "test"))
        ref, truth = write(work / "reference.h5", test), write(work / "truth.h5", train_set)
        return _Data(train_set, valid, str(ref), str(truth), d.dataset, len(test))
    from ..evaluate.reference import reference_source

    source = reference_source(d.dataset, cache)[0]
    return _Data(load(d.dataset, "train", cache), None, d.dataset, "auto", d.dataset, len(source))


def _same_simulation(path: Path, d: DataConfig) -> bool:
    """Whether ``path`` already holds these simulated showers (same n and seed): a re-run reuses them."""
    if not path.exists():
        return False
    attrs = read_attrs(path)
    with h5py.File(path, "r") as f:
        rows = len(f[next(iter(f.keys()))])
    return rows == d.n and attrs.get("seed") == d.seed


def _simulated_jets(d: DataConfig, sim: JetSimConfig, work: Path, cache: Cache, progress: bool) -> Path:
    """The config's simulated jets, in the work folder; with ``data: {cache: true}`` (the demo) in
    the pcbench cache as ``jetnet30-sim:TYPE`` instead, so that ``pcbench datasets`` lists it: made
    there when the cache has none, used from there when it holds exactly these jets (n, seed,
    settings), and never replaced (another cached set leaves the work-folder copy in use)."""
    n, seed = int(d.n), int(d.seed)
    entry = default_registry().get(f"{d.simulate}-sim")
    cached = cache.path(entry, entry.file(sim.jet_type))
    if not d.cache:
        path = work / "data.h5"
    elif cached.exists():
        attrs = read_attrs(cached)
        with h5py.File(cached, "r") as f:
            rows = len(f["particle_features"])
        same = json.loads(json.dumps(asdict(sim)))  # as the file stores it (tuples as lists)
        if rows == n and attrs.get("seed") == seed and attrs.get("settings") == same:
            return cached
        path = work / "data.h5"
    else:
        path = cached
    if not path.exists():
        simulate(d.simulate, n, seed, sim.jet_type, output=path, workers=d.workers, progress=progress)
    return path


def rec_epochs(ckpt: Path) -> int:
    """Epochs trained up to the checkpoint ``ckpt`` (its folder's last.pt)."""
    last = ckpt.with_name("last.pt")
    return int(torch.load(last, map_location="cpu", weights_only=False)["epoch"]) if last.exists() else 0


def run_pipeline(cfg: LeaderboardConfig | dict[str, Any], work_dir: str | os.PathLike[str],
                 out_dir: str | os.PathLike[str] | None = None, cache: Cache | None = None, plots: bool = False,
                 progress: bool = True, log: Callable[[str], None] = print) -> list[EvaluationResult]:
    """Run a config end to end in ``work_dir``; with ``out_dir`` write its tables there (with the
    published rows of its data set, when it is a real one).

    Returns the evaluation records (one per model), whose ``reference`` is the config's data
    name, so that tables are keyed by benchmark rather than by a temporary path.  ``plots`` (or
    the config's ``evaluate.plots``) writes figures and HTML reports beside the records.
    """
    cfg = parse_config(cfg)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # ``threads`` bounds every BLAS / OpenMP pool too: a thread count is part of the platform fingerprint
    with threadpool_limits(limits=cfg.threads) if cfg.threads else contextlib.nullcontext():
        return _run(cfg, work, out_dir, cache or Cache(), plots or cfg.evaluate.plots, progress, log)


def _train(cfg: LeaderboardConfig, spec: ModelEntry, data: _Data, work: Path, checkpoints: dict[str, Path],
           progress: bool) -> Path:
    """Train one row's model (``models.train``); returns the checkpoint to sample."""
    from ..models import TrainOptions, model_config, train, training_provenance

    split = {"data": data.name, "split": "train"}
    opts = TrainOptions(out_dir=work / "models" / spec.row, device=cfg.train.device, seed=cfg.train.seed,
                        max_minutes=spec.max_minutes, clock=cfg.train.clock, progress=progress, epochs=spec.epochs,
                        val_every=cfg.train.val_every if spec.val_every is None else spec.val_every,
                        teacher=checkpoints.get(spec.teacher) if spec.teacher else None,
                        provenance=training_provenance(data.train, split, spec.config, cfg.data.jet_type))
    return train(spec.name, model_config(spec.name, spec.config, **spec.set), data.train, opts, data.valid)


def _sample(cfg: LeaderboardConfig, ckpt: Path, out: Path, data: _Data, energies: Any) -> int:
    """Sample one row's model into ``out`` (``models.sample``; jets: 1,000 by default; showers: at
    ``energies``, or as many as the reference holds); returns how many objects."""
    from ..models import sample

    sm = cfg.sample
    n = sm.n or (1000 if cfg.kind == "jets" else len(energies) if energies is not None else data.n_reference)
    if energies is not None and len(energies) < n:
        from ..errors import ConfigError

        raise ConfigError(f"sample.n: {n} showers asked, but the reference holds {len(energies)} incident energies")
    return sample(ckpt, out, n, sm.batch_size, cfg.train.device, sm.seed, energies).n


def _check_pareto(cfg: LeaderboardConfig) -> None:
    """``cost.pareto`` names a metric the config computes (checked before any training)."""
    from ..errors import ConfigError
    from ..evaluate.calochallenge import CaloSuiteConfig
    from ..evaluate.ild import ILDSuiteConfig
    from ..evaluate.jets import JetSuiteConfig

    m = cfg.cost.pareto
    known = set(cfg.evaluate.metrics) or set(JetSuiteConfig.METRICS if cfg.kind == "jets" else
                                             (*CaloSuiteConfig.METRICS, *ILDSuiteConfig.METRICS))
    if m is not None and m not in known:
        raise ConfigError(f"{cfg.name}: cost.pareto {m!r} is not a metric this config computes "
                          f"(expected one of {', '.join(sorted(known))})")
    if m is not None and not cfg.cost.batches:
        raise ConfigError(f"{cfg.name}: cost.pareto needs cost.batches (the batch sizes to time)")


def _cost(cfg: LeaderboardConfig, ckpt: Path, rec: EvaluationResult, records: Path) -> None:
    """Time the row's checkpoint (``models.cost.measure_cost``), write its cost record beside the
    checkpoint (where ``pcbench time`` writes it) and add the summary to the evaluation record's
    provenance (``cost``), rewritten in ``records``."""
    from ..evaluate import safe_name
    from ..models.cost import measure_cost

    c = measure_cost(ckpt, cfg.train.device, cfg.cost.batches, cfg.cost.threads, cfg.cost.repeats)
    c.write(ckpt.with_suffix(".cost.json"))
    rec.provenance["cost"] = cost_summary(c)
    rec.write(records / f"{safe_name(rec.model)}.json")


def cost_summary(c: Any) -> dict[str, Any]:
    """What a record keeps of a cost record: parameters read while sampling, FLOPs per object,
    and ms per object (mean, std, repeats) per batch and thread count."""
    used = c.parameters.get("used_in_sampling")
    return {"parameters": c.parameters["total"] if used is None else used,
            "flops_per_object": c.flops.get("per_object"), "device": c.device,
            "timings": [{"batch": t.batch, "threads": t.threads, "ms_per_object": t.ms_per_object,
                         "ms_per_object_std": t.ms_per_object_std, "loaded": t.loaded} for t in c.timings]}


def _run(cfg: LeaderboardConfig, work: Path, out_dir: str | os.PathLike[str] | None, cache: Cache, plots: bool,
         progress: bool, log: Callable[[str], None]) -> list[EvaluationResult]:
    objects = cfg.kind
    _check_pareto(cfg)
    log("stage: data (simulate or load the reference data set)")
    data = _data(cfg, work, cache, progress)
    log(f"data: {data.name}: {len(data.train)} training (also the truth row's sample), "
        + (f"{len(data.valid)} validation, " if data.valid is not None else "")
        + f"{data.n_reference} reference (test split) {objects}")
    records, checkpoints = [], {}
    energies = None  # showers with energies_from: reference: the test split's incident energies, read once
    if cfg.kind == "showers" and cfg.sample.energies_from == "reference":
        from ..evaluate.reference import reference_source

        energies = reference_source(data.reference, cache)[0].incident_energies()
    out = Path(out_dir) if out_dir is not None else work / "results"
    for i, spec in enumerate(cfg.models, 1):
        stage = f"stage: model {i}/{len(cfg.models)}, {spec.row}:"
        log(f"{stage} training")
        ckpt = checkpoints[spec.row] = _train(cfg, spec, data, work, checkpoints, progress)
        samples = work / "samples" / f"{spec.row}.h5"
        log(f"{stage} sampling")
        n = _sample(cfg, ckpt, samples, data, energies)
        log(f"{stage} evaluating")
        ev = cfg.evaluate
        # the files hold the config's splits: the record names the data set and split, not temporary paths
        names = {"samples": samples.name, "platform": platform_fingerprint(), "config_name": cfg.name}
        if data.truth != "auto":
            names.update({"reference": data.name, "reference_file": Path(data.reference).name, "reference_split": "test",
                          "truth": data.name, "truth_split": "train", "truth_file": Path(data.truth).name,
                          "truth_sample": f"{data.name} train split"})
        rec = evaluate(samples, data.reference, spec.row, cfg.evaluate.profile, out_dir=out / "records", plots=plots,
                       metrics=cfg.evaluate.metrics, truth=data.truth, cache=cache, names=names,
                       per_bin=ev.per_bin, energy_bins=ev.energy_bins, jet_bins=ev.jet_bins, null=ev.null,
                       equivalent_stats=ev.equivalent_stats)
        if cfg.cost.batches:
            log(f"{stage} timing (pcbench time)")
            _cost(cfg, ckpt, rec, out / "records")
        records.append(rec)
        trained = f"{rec_epochs(ckpt)} epochs trained (best kept: {ckpt.name})" if objects == "jets" else "trained"
        log(f"{spec.row}: {trained}, {n} {objects} sampled, evaluated")
    if out_dir is not None:
        write_tables(build_tables(records, published_rows()), out_dir)
        if cfg.cost.pareto:
            from .pareto import pareto_figure

            pareto_figure(records, cfg.cost.pareto, Path(out_dir) / f"pareto_{cfg.cost.pareto}.png")
    return records
