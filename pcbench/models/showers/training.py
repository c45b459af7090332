"""Training any shower generator (``showers.base.ShowerGenerator``): its phases run in the one
training loop of every generator (``trainer.py``: budget agreed by all ranks, checkpoints, bar),
then what finishes it; checkpoints with config and data provenance, resume, and DDP under
``torchrun`` (the same command; gloo on CPU, nccl on GPUs).  No model is known here by name.

CaloChallenge voxel showers are trained on as point clouds (``as_point_showers``): one point per
voxel at or above the readout threshold, placed uniformly inside the voxel, carrying its energy;
the model then generates for that geometry, and its samples are projected back onto the voxels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ... import __version__
from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...data.geometry_of import shower_geometry
from ...errors import PcbenchError
from ...geometry import get_geometry, layer_stack, to_points
from ...metrics.calo_features import threshold_voxels
from ..checkpoints import load_checkpoint_file, resume_path, save_checkpoint
from ..trainer import Budget, TrainOptions, ddp, distributed_context, run_phases, wait_for_all_ranks
from .base import ShowerGenerator, ShowerRun

__all__ = ["train_showers", "as_point_showers", "training_provenance"]


def training_provenance(showers: ShowerPointSet | VoxelShowerSet, source: dict[str, Any],
                        config_name: str) -> dict[str, Any]:
    """What a checkpoint records about its training showers: ``source`` (data name and split, or
    file), the incident-energy range [MeV] (sampling's default range), whether they are
    parameterised (carried into every sample and record), the config name and the count."""
    return {**source, "energy_range_mev": [float(showers.incident_energy.min()), float(showers.incident_energy.max())],
            "parameterised": bool(showers.attrs.get("parameterised", False)), "config_name": config_name,
            "n_showers": len(showers)}


def as_point_showers(data: ShowerPointSet | VoxelShowerSet, seed: int = 0) -> tuple[ShowerPointSet, str | None]:
    """Training showers as points, and the geometry they are on (``None``: point showers, whose
    geometry the model's config names).

    Voxel showers become one point per voxel at or above the geometry's readout threshold, uniform
    inside the voxel (``numpy.random.default_rng(seed)``), in the CaloChallenge point convention
    (x, y [mm], z = layer id + U[0, 1)) with the voxel's energy [MeV].
    """
    if isinstance(data, ShowerPointSet):
        return data, None
    name = shower_geometry({**data.attrs, "geometry": data.geometry}, data.num_voxels)
    if name is None:
        raise PcbenchError(f"voxel showers with {data.num_voxels} voxels: no CaloChallenge geometry has that many; "
                           "give the file a `geometry` attribute")
    geometry = get_geometry(name)
    voxels = threshold_voxels(data.voxels, layer_stack(geometry).threshold)
    points, mask = to_points(voxels, geometry, placement="uniform", seed=seed)
    return ShowerPointSet(points, mask, data.incident_energy, {**data.attrs, "converted_from": f"{name} voxels"}), name


def _save(model: ShowerGenerator, run: ShowerRun) -> Path:
    """Write ``last.pt`` (rank 0): the model's payload, weights, the run's state with the
    optimizers' states, seed, torch's RNG and provenance."""
    path = Path(run.opts.out_dir) / "last.pt"
    if run.rank == 0:
        state = {**run.state, "optimizers": {k: o.state_dict() for k, o in run.optimizers.items()}}
        save_checkpoint(path, {**model.payload(), "state_dict": model.state_dict(), "train_state": state,
                               "seed": run.opts.seed, "torch_rng": torch.get_rng_state(),
                               "provenance": {**run.opts.provenance, "pcbench_version": __version__,
                                              "torch": torch.__version__}})
    return path


def train_showers(cls: type[ShowerGenerator], config: dict[str, Any], data: ShowerPointSet | VoxelShowerSet,
                  opts: TrainOptions, teacher: ShowerGenerator | None = None) -> Path:
    """Train shower generator ``cls`` on ``data`` (ILD-like point showers in mm and MeV, or
    CaloChallenge voxel showers, then trained on as points for their geometry, which replaces the
    config's ``grid``); ``teacher``: the restored model a distillation learns from.  Returns
    ``last.pt``."""
    data, on_geometry = as_point_showers(data, opts.seed)
    if on_geometry is not None:
        config = {**config, "grid": on_geometry}
    rank, world, device = distributed_context(opts.device)
    torch.manual_seed(opts.seed)
    resumed = resume_path(opts.out_dir, opts.resume)
    model = cls.build(config, data, opts, teacher, log_point_energy=on_geometry is not None).to(device)
    run = ShowerRun(data, model.initial_state(), opts, rank, world, device, model.make_optimizers(), teacher)
    if resumed is not None:
        saved = load_checkpoint_file(resumed, device)
        model.load_state_dict(saved["state_dict"])
        run.state = saved["train_state"]
        for k, o in run.optimizers.items():
            if k in run.state.get("optimizers", {}):
                o.load_state_dict(run.state["optimizers"][k])
        run.state.pop("optimizers", None)
        torch.set_rng_state(saved["torch_rng"])
    run.state["world_size"] = world  # of the latest (resumed) run
    _wrap(model, world, device)
    phases = model.phases(run)

    def save() -> Path:
        _unwrap(model)
        path = _save(model, run)
        _wrap(model, world, device)
        return path

    if phases:
        run_phases(cls.name, phases, Budget(opts.max_minutes, world, opts.clock), save, opts.progress and rank == 0)
    _unwrap(model)
    if all(p.done() >= p.planned for p in phases) and rank == 0:
        model.eval()
        model.finish(run)
    run.state["progress"] = [{"label": p.label, "done": int(p.done()), "planned": int(p.planned), "unit": p.unit}
                             for p in phases]
    run.state["untrained"] = model.untrained(run.state)
    run.state["finished"] = not run.state["untrained"]
    path = _save(model, run)
    wait_for_all_ranks(world)
    return path


def _wrap(model: ShowerGenerator, world: int, device: str) -> None:
    """Each trained part in DistributedDataParallel (its gradients averaged over the ranks)."""
    if world > 1:
        for parent, attr in model.trained_parts():
            setattr(parent, attr, ddp(getattr(parent, attr), device))


def _unwrap(model: ShowerGenerator) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    for parent, attr in model.trained_parts():
        if isinstance(getattr(parent, attr), DDP):
            setattr(parent, attr, getattr(parent, attr).module)
