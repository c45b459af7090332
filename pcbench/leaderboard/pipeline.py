"""A leaderboard run from a YAML config: data -> train -> sample -> evaluate -> tables.

The same function serves the demo (``pcbench demo``), the committed tables
(``pcbench leaderboard run``) and their reproduction (``pcbench leaderboard reproduce``).
A config (see ``leaderboard/smoke/config.yaml``)::

    name: smoke
    data: {simulate: jetnet30, jet_type: g, n: 1200, seed: 1, workers: 2}   # or {dataset: jetnet30:g}
    threads: 2
    train: {seed: 0, val_every: 0, device: cpu}
    sample: {n: 300, seed: 0, batch_size: 256}
    evaluate: {profile: fast, metrics: [w1m, w1p, w1efp, fpd]}
    models:
      - {name: epic-fm, config: small, epochs: 2, max_minutes: null, set: {hidden: 32}}
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import torch
import yaml
from threadpoolctl import threadpool_limits

from .._platform import platform_fingerprint
from ..data import Cache, JetSet, default_registry, load, read, write
from ..data.formats import read_attrs
from ..data.loaders import split_indices
from ..data.simulate import JetSimConfig, simulate_jets
from ..errors import PcbenchError
from ..evaluate import EvaluationResult, evaluate
from ..models import TrainOptions, model_config, sample_jets, train
from .store import write_tables
from .tables import build_tables

__all__ = ["load_config", "run_pipeline", "platform_fingerprint"]

_KEYS = {"name", "description", "data", "threads", "train", "sample", "evaluate", "models", "tolerance"}


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a leaderboard config; errors name the file and the field."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PcbenchError(f"{path}: cannot read the config: {exc}") from exc
    if not isinstance(cfg, dict):
        raise PcbenchError(f"{path}: expected a mapping")
    unknown = set(cfg) - _KEYS
    if unknown:
        raise PcbenchError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}; expected {sorted(_KEYS)}")
    for key in ("name", "data", "models"):
        if key not in cfg:
            raise PcbenchError(f"{path}: missing field {key!r}")
    for i, m in enumerate(cfg["models"]):
        if "name" not in m:
            raise PcbenchError(f"{path}: models[{i}] has no 'name'")
    return cfg


def _data(cfg: dict[str, Any], work: Path, cache: Cache, progress: bool) -> tuple[JetSet, JetSet, Path, Path, str]:
    """(train, valid, reference file = test split, truth file = train split, benchmark reference name).

    The papers' protocol: every model against the whole test split, the truth row a disjoint
    sample (the training split) of the same data against the same test split."""
    d = cfg["data"]
    if "simulate" in d:
        sim = JetSimConfig(d.get("jet_type", "g"), num_particles={"jetnet30": 30, "jetnet150": 150}[d["simulate"]])
        path = _simulated_jets(d, sim, work, cache, progress)
        jets = read(path)
        train_set, valid, test = (jets.subset(split_indices(len(jets), s)) for s in ("train", "valid", "test"))
        name = f"{d['simulate']}-sim:{sim.jet_type} (n={d['n']}, seed={d.get('seed', 1)})"
    elif "dataset" in d:
        train_set, valid, test = (load(d["dataset"], s, cache) for s in ("train", "valid", "test"))
        name = d["dataset"]
    else:
        raise PcbenchError("config data: expected 'simulate' (jetnet30/jetnet150) or 'dataset' (a registry name)")
    ref = write(work / "reference.h5", test)
    truth = write(work / "truth.h5", train_set)
    return train_set, valid, ref, truth, name


def _simulated_jets(d: dict[str, Any], sim: JetSimConfig, work: Path, cache: Cache, progress: bool) -> Path:
    """The config's simulated jets, in the work folder; with ``data: {cache: true}`` (the demo) in
    the pcbench cache as ``jetnet30-sim:TYPE`` instead, so that ``pcbench datasets`` lists it: made
    there when the cache has none, used from there when it holds exactly these jets (n, seed,
    settings), and never replaced (another cached set leaves the work-folder copy in use)."""
    n, seed = int(d["n"]), int(d.get("seed", 1))
    entry = default_registry().get(f"{d['simulate']}-sim")
    cached = cache.path(entry, entry.file(sim.jet_type))
    if not d.get("cache"):
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
        simulate_jets(n, sim, path, seed=seed, workers=int(d.get("workers", 1)), progress=progress)
    return path


def rec_epochs(ckpt: Path) -> int:
    """Epochs trained up to the checkpoint ``ckpt`` (its folder's last.pt)."""
    last = ckpt.with_name("last.pt")
    return int(torch.load(last, map_location="cpu", weights_only=False)["epoch"]) if last.exists() else 0


def run_pipeline(cfg: dict[str, Any], work_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
                 cache: Cache | None = None, plots: bool = False, progress: bool = True,
                 log: Callable[[str], None] = print) -> list[EvaluationResult]:
    """Run a config end to end in ``work_dir``; with ``out_dir`` write its tables there.

    Returns the evaluation records (one per model), whose ``reference`` is the config's data
    name, so that tables are keyed by benchmark rather than by a temporary path.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    threads = cfg.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    # ``threads`` bounds every BLAS / OpenMP pool too: a thread count is part of the platform fingerprint
    with threadpool_limits(limits=int(threads)) if threads else contextlib.nullcontext():
        return _run(cfg, work, out_dir, cache, plots, progress, log)


def _run(cfg: dict[str, Any], work: Path, out_dir: str | os.PathLike[str] | None, cache: Cache | None, plots: bool,
         progress: bool, log: Callable[[str], None]) -> list[EvaluationResult]:
    tr = cfg.get("train", {})
    sm = cfg.get("sample", {})
    ev = cfg.get("evaluate", {})
    log("stage: data (simulate or load the reference data set)")
    train_set, valid, ref_path, truth_path, ref_name = _data(cfg, work, cache or Cache(), progress)
    log(f"data: {ref_name}: {len(train_set)} training (also the truth row's sample), {len(valid)} validation, "
        f"{len(read(ref_path))} reference (test split) jets")
    records = []
    for i, spec in enumerate(cfg["models"], 1):
        name = spec["name"]
        label = spec.get("label", name)
        stage = f"stage: model {i}/{len(cfg['models'])}, {label}:"
        log(f"{stage} training")
        conf = model_config(name, spec.get("config", "small"), **spec.get("set", {}))
        device = str(tr.get("device", "cpu"))
        opts = TrainOptions(epochs=int(spec.get("epochs", conf["epochs"])), out_dir=work / "models" / label,
                            device=device, seed=int(tr.get("seed", 0)), val_every=int(tr.get("val_every", 0)),
                            max_minutes=spec.get("max_minutes"), progress=progress,
                            provenance={"data": ref_name, "jet_type": cfg["data"].get("jet_type"),
                                        "config_name": spec.get("config", "small")})
        ckpt = train(name, conf, train_set, opts, valid)
        samples = work / "samples" / f"{label}.h5"
        log(f"{stage} sampling")
        sample_jets(ckpt, int(sm.get("n", 1000)), samples, int(sm.get("batch_size", 1024)), device=device,
                    seed=int(sm.get("seed", 0)))
        out = Path(out_dir) if out_dir is not None else work / "results"
        log(f"{stage} evaluating")
        rec = evaluate(samples, str(ref_path), label, ev.get("profile", "fast"), out_dir=out / "records", plots=plots,
                       metrics=tuple(ev.get("metrics", ())), truth=str(truth_path), cache=cache)
        # the files hold the config's splits: the records name the data set and split, not temporary paths
        rec.provenance["protocol"]["truth_sample"] = f"{ref_name} train split"
        rec.provenance.update({"reference": ref_name, "reference_file": str(ref_path.name), "samples": samples.name,
                               "reference_split": "test", "truth": ref_name, "truth_split": "train",
                               "truth_file": truth_path.name,
                               "platform": platform_fingerprint(), "config_name": cfg["name"]})
        rec.write(out / "records" / f"{label}.json")
        records.append(rec)
        trained = rec_epochs(ckpt)
        log(f"{label}: {trained} epochs trained (best kept: {ckpt.name}), {sm.get('n', 1000)} jets sampled, evaluated")
    if out_dir is not None:
        write_tables(build_tables(records), out_dir)
    return records
