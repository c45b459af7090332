"""Sampling a trained generator into the canonical sample file of its kind, with its generation
time per object and the machine it was measured on."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._platform import machine
from .._progress import object_bar
from ..data import JET_TYPES, JetSet, write
from .checkpoints import training_summary

__all__ = ["sample_jets", "sample_showers", "time_generation"]


def time_generation(model, n: int, batch_size: int, seed: int = 0, progress: bool = False) -> tuple[JetSet, float]:
    """Sample ``n`` jets and return them with the wall-clock seconds per jet (post-processing
    included; CUDA synchronised), measured after one warm-up batch; ``progress`` shows a bar."""
    model.sample(min(n, batch_size), seed=seed + 1, batch_size=batch_size)  # warm-up
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    with object_bar(n, "jets", f"sampling {model.name}", progress) as advance:
        t0 = time.perf_counter()
        jets = model.sample(n, seed=seed, batch_size=batch_size, progress=advance)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return jets, (time.perf_counter() - t0) / n


def sample_jets(checkpoint: str | Path, n: int, out: str | Path, batch_size: int = 1024, device: str = "cpu",
                seed: int = 0, progress: bool = False, loaded: tuple[Any, dict[str, Any]] | None = None
                ) -> tuple[Path, dict[str, Any]]:
    """Sample ``n`` jets from a checkpoint into ``out`` (JetNet layout, pcbench schema).

    The file records the model, its config, the checkpoint's md5, the seed, the generation time
    per jet [s] and the hardware it was measured on.  ``loaded``: the (model, payload) that
    ``api.load_generator`` already restored from ``checkpoint`` (not read again).
    """
    from .api import load_generator

    model, payload = loaded or load_generator(checkpoint, device, kind="jets")
    hw = machine(device)  # the load average just before the timed run
    jets, per_jet = time_generation(model, n, batch_size, seed, progress)
    attrs = {"model": payload["model"], "model_config": payload["config"], "checkpoint": str(checkpoint),
             "checkpoint_md5": payload["checkpoint_md5"], "checkpoint_epoch": payload["epoch"], "seed": seed,
             "generation_time_per_object_s": per_jet, "generation_batch_size": batch_size,
             "hardware": hw, "training_data": payload["provenance"], "training": training_summary(payload)}
    jet_type = payload["provenance"].get("jet_type")
    if jet_type in JET_TYPES:  # the class the model was trained on
        jets = JetSet(jets.particles, jets.mask, jets.jets, np.full(len(jets), JET_TYPES.index(jet_type), np.int8),
                      jets.attrs)
    return write(out, jets, attrs), attrs


def sample_showers(checkpoint: str | Path, n: int, out: str | Path, batch_size: int = 64, device: str = "cpu",
                   seed: int = 0, energies_mev: np.ndarray | None = None, steps: Any = None,
                   project: bool | None = None, progress: bool = False,
                   loaded: tuple[Any, dict[str, Any]] | None = None) -> tuple[Path, dict[str, Any]]:
    """Sample ``n`` showers from a shower checkpoint into ``out`` (pcbench schema).

    ``steps``: the pipeline steps (all by default); ``project`` (it sets ``steps.project``): cells
    or points, by default the geometry's format: points in the ILD layout for a model of the ILD
    grid, voxels in the CaloChallenge layout for a model of a CaloChallenge geometry.

    Incident energies: ``energies_mev`` (e.g. a reference's, so that evaluate can compare), else
    uniform over the training range (log-uniform when it spans more than a factor 10).  The file
    records the model, config, checkpoint md5, seed, pipeline steps, the generation time per
    shower [s] (whole pipeline, after a warm-up batch) and the hardware.
    """
    from ..geometry import LayeredGrid
    from .showers.pipeline import PipelineSteps, pipeline_attrs
    from .api import load_generator

    model, payload = loaded or load_generator(checkpoint, device, kind="showers")
    grid = model.grid
    steps = replace(steps or PipelineSteps(), project=not isinstance(grid, LayeredGrid) if project is None else project)
    if energies_mev is None:
        lo, hi = payload["provenance"].get("energy_range_mev", (10_000.0, 90_000.0))
        rng = np.random.default_rng(seed)
        energies_mev = np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if hi > 10 * lo else rng.uniform(lo, hi, n)
    energies_mev = np.asarray(energies_mev, np.float64)[:n]
    model.sample(energies_mev[:min(n, batch_size)], seed=seed + 1, batch_size=batch_size, steps=steps)  # warm-up
    hw = machine(device)  # the load average just before the timed run
    with object_bar(len(energies_mev), "showers", f"sampling {payload['model']}", progress) as advance:
        t0 = time.perf_counter()
        showers = model.sample(energies_mev, seed=seed, batch_size=batch_size, steps=steps, progress=advance)
        per_shower = (time.perf_counter() - t0) / len(energies_mev)
    attrs = {"model": payload["model"], "model_config": payload["config"], "checkpoint": str(checkpoint),
             "checkpoint_md5": payload["checkpoint_md5"], "seed": seed, "generation_time_per_object_s": per_shower,
             "generation_batch_size": batch_size, "hardware": hw,
             "training_data": payload["provenance"], "training": training_summary(payload),
             **pipeline_attrs(steps, getattr(model, "occupancy", None)),
             "geometry": grid.name}
    if payload["provenance"].get("parameterised"):
        attrs.update(parameterised=True, source=f"samples of {payload['model']} trained on PARAMETERISED showers "
                                                 "(pcbench's GFlash-type model), not Geant4")
    return write(out, showers, attrs, layout="ild" if isinstance(grid, LayeredGrid) else None), attrs
