"""Training the shower generators: ShowerFlow, the CaloClouds II point model, consistency
distillation, the occupancy calibration; checkpoints with config and data provenance, resume,
a wall-clock budget, and DDP under ``torchrun`` (the same command; gloo on CPU, nccl on GPUs),
the phases run by the one training loop of every generator (``trainer.py``).

The point model has no interaction between points, so each step trains on a random subset of
``points_per_shower`` points of each shower (conditioned on the shower's true number of points):
the loss is the same in expectation and the step far cheaper.

CaloChallenge voxel showers are trained on as point clouds (``as_point_showers``): one point per
voxel at or above the readout threshold, placed uniformly inside the voxel, carrying its energy;
the model then generates for that geometry, and its samples are projected back onto the voxels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import __version__
from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...errors import CheckpointError, PcbenchError, UsageError
from ...geometry import get_geometry, layer_stack, project, to_points
from ...data.geometry_of import shower_geometry
from ...metrics.calo_features import threshold_voxels
from ..checkpoints import load_checkpoint_file, resume_path, save_checkpoint
from .caloclouds2 import CaloClouds2
from .caloclouds2_cm import CaloClouds2CM
from ..registry import SHOWER_MODELS
from .baseline import IndependentShowerPoints
from .flow import ShowerStats, shower_quantities
from .pipeline import OccupancyCalibration, PipelineSteps
from ..trainer import Budget, Phase, ddp, distributed_context, run_phases

__all__ = ["ShowerTrainOptions", "train_shower_model", "load_shower_model", "as_point_showers",
           "training_provenance"]


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


@dataclass
class ShowerTrainOptions:
    """How to train (the model's settings are in its config).

    Attributes:
        out_dir: ``last.pt`` is written there (every ``checkpoint_every`` steps and at the end).
        teacher: the CaloClouds II checkpoint to distil (caloclouds2-cm).
        max_minutes: stop (and checkpoint) once this wall-clock budget is spent.
    """

    out_dir: Path
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    max_minutes: float | None = None
    checkpoint_every: int = 500
    progress: bool = True
    teacher: Path | None = None
    occupancy_showers: int = 300
    provenance: dict[str, Any] = field(default_factory=dict)


def _payload(model, name: str, state: dict[str, Any], opts: ShowerTrainOptions) -> dict[str, Any]:
    return {"model": name, "config": model.config, "stats": getattr(model, "stats", None) and model.stats.to_dict(),
            "state_dict": model.state_dict(), "occupancy": None if getattr(model, "occupancy", None) is None
            else list(map(list, (model.occupancy.real_points_to_hits, model.occupancy.gen_hits_to_points))),
            "train_state": state, "seed": opts.seed, "torch_rng": torch.get_rng_state(),
            "provenance": {**opts.provenance, "pcbench_version": __version__, "torch": torch.__version__}}


def load_shower_model(path: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """A shower generator restored from a checkpoint (eval mode) and the checkpoint's payload."""
    payload = load_checkpoint_file(path, device)
    if payload["model"] not in SHOWER_MODELS:
        raise CheckpointError(f"{path}: a checkpoint of {payload['model']!r}, not of a shower model "
                              f"({', '.join(SHOWER_MODELS)})")
    cls = SHOWER_MODELS[payload["model"]]
    if cls is IndependentShowerPoints:
        model = cls(payload["config"])
        for k in ("counts", "count_bin", "pool", "pool_bin"):
            setattr(model, k, torch.empty_like(payload["state_dict"][k]))
    else:
        model = cls(payload["config"], ShowerStats.from_dict(payload["stats"]))
        if payload["occupancy"] is not None:
            model.occupancy = OccupancyCalibration(*map(tuple, payload["occupancy"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload


def _subsample(x: np.ndarray, mask: np.ndarray, rows: np.ndarray, k: int, rng: np.random.Generator):
    """(B, k, 4) random real points of each shower in ``rows`` (fewer: masked), (B, k) mask."""
    keys = np.where(mask[rows], rng.random(mask[rows].shape), -1.0)
    pick = np.argsort(-keys, axis=1)[:, :k]
    return np.take_along_axis(x[rows], pick[..., None], axis=1), np.take_along_axis(mask[rows], pick, axis=1)


def _fit_occupancy(model: CaloClouds2, data: ShowerPointSet, n: int, seed: int) -> OccupancyCalibration:
    """Cubic fits of cell hits vs points on real showers, and of points vs hits on showers
    generated without the occupancy calibration (0.1 MeV threshold on the model's grid)."""
    g, threshold = model.grid, model.layers.threshold
    rows = np.random.default_rng(seed).choice(len(data), min(n, len(data)), replace=False)
    real = data.subset(np.sort(rows))
    real_hits = project(real.points, g, real.mask, threshold=threshold, output="sparse").hits.counts
    gen = model.sample(real.incident_energy, seed=seed + 1, steps=PipelineSteps(occupancy=False))
    gen_hits = project(gen.points, g, gen.mask, threshold=threshold, output="sparse").hits.counts
    return OccupancyCalibration(OccupancyCalibration.fit_cubic(real.mask.sum(1), real_hits),
                                OccupancyCalibration.fit_cubic(gen_hits, gen.mask.sum(1)))


def _save(model, name: str, state: dict[str, Any], opts: ShowerTrainOptions, rank: int,
          optimizers: dict[str, torch.optim.Optimizer]) -> Path:
    """Write ``last.pt`` (rank 0), the optimizers' states with the run's state."""
    path = Path(opts.out_dir) / "last.pt"
    if rank == 0:
        full = {**state, "optimizers": {k: o.state_dict() for k, o in optimizers.items()}}
        save_checkpoint(path, _payload(model, name, full, opts))
    return path


def train_shower_model(name: str, config: dict[str, Any], data: ShowerPointSet | VoxelShowerSet,
                       opts: ShowerTrainOptions) -> Path:
    """Train shower generator ``name`` on ``data`` (ILD-like point showers in mm and MeV, or
    CaloChallenge voxel showers, then trained on as points for their geometry, which replaces the
    config's ``grid``); returns ``last.pt``.  The phases (ShowerFlow epochs, point-model or
    distillation steps) run in the one training loop (``trainer.py``)."""
    data, on_geometry = as_point_showers(data, opts.seed)
    if on_geometry is not None:
        config = {**config, "grid": on_geometry}
    rank, world, device = distributed_context(opts.device)
    torch.manual_seed(opts.seed)
    out = Path(opts.out_dir)
    last = out / "last.pt"
    resumed = resume_path(out, opts.resume)
    if name == "shower-baseline":
        model = IndependentShowerPoints(config, data, opts.seed)
        if rank == 0:
            save_checkpoint(last, _payload(model, name, {"done": True}, opts))
        return last
    if name == "caloclouds2-cm":
        if opts.teacher is None:
            raise UsageError("caloclouds2-cm distils a trained CaloClouds II: give --teacher CKPT")
        teacher, _ = load_shower_model(opts.teacher, device)
        model = CaloClouds2CM.from_teacher(teacher, config).to(device)
        opts.provenance = {**opts.provenance, "teacher": str(opts.teacher)}
    else:
        teacher = None
        cls = SHOWER_MODELS[name]
        stats = ShowerStats.fit(data.points, data.mask, layer_stack(get_geometry(config["grid"])), data.incident_energy,
                                log_point_energy=on_geometry is not None)
        model = cls(config, stats).to(device)
    c = model.config
    state: dict[str, Any] = {"flow_epoch": 0, "step": 0, "cm_step": 0, "history": []}
    flow_opt = torch.optim.Adam(model.flow.parameters(), lr=c["flow_lr"])
    net_opt = torch.optim.RAdam(model.denoiser.parameters(), lr=c["lr"])
    optimizers = {"flow": flow_opt, "net": net_opt}
    if resumed is not None:
        saved = load_checkpoint_file(resumed, device)
        model.load_state_dict(saved["state_dict"])
        state = saved["train_state"]
        for k, o in optimizers.items():
            if k in state.get("optimizers", {}):
                o.load_state_dict(state["optimizers"][k])
        state.pop("optimizers", None)
        torch.set_rng_state(saved["torch_rng"])
    state["world_size"] = world  # of the latest (resumed) run
    budget = Budget(opts.max_minutes, world)
    _wrap(model, world, device)
    x_all = model.to_model(data.points, data.mask)
    n_pts = data.mask.sum(1)
    phases = []
    if teacher is None:
        feats = torch.as_tensor(model.flow.encode(shower_quantities(data.points, data.mask, model.layers),
                                                  data.incident_energy))
        flow = model.flow.flow
        ctx = model.flow.context(data.incident_energy)

        def flow_epoch() -> str:
            rng = np.random.default_rng([opts.seed, 1, state["flow_epoch"]])
            usable = len(feats) - len(feats) % world  # as many batches on every rank (DDP's all-reduce)
            order = rng.permutation(len(feats))[:usable][rank::world]
            losses = []
            for i in range(0, len(order), c["flow_batch_size"]):
                idx = torch.as_tensor(order[i:i + c["flow_batch_size"]])
                loss = -flow(ctx[idx].to(device)).log_prob(feats[idx].to(device)).mean()
                flow_opt.zero_grad()
                loss.backward()
                flow_opt.step()
                losses.append(loss.item())
            state["flow_epoch"] += 1
            state["history"].append({"phase": "flow", "epoch": state["flow_epoch"], "nll": float(np.mean(losses))})
            return f"loss {float(np.mean(losses)):.4g}"

        phases.append(Phase("ShowerFlow", c["flow_epochs"], "epochs", lambda: state["flow_epoch"], flow_epoch))
    # the point model: EDM (CaloClouds II), DDPM (CaloClouds) or consistency distillation (CM)
    key, n_steps, stream = ("step", c["diffusion_steps"], 2) if teacher is None else ("cm_step", c["cm_steps"], 3)
    gen = torch.Generator(device=device)
    window: list[float] = []  # losses since the last history entry (their mean is recorded)

    def point_step() -> str | None:
        gen.manual_seed(opts.seed * 1_000_003 + state[key] * world + rank)  # a function of the step: resumable
        rng = np.random.default_rng([opts.seed, stream, state[key], rank])
        rows = rng.integers(0, len(x_all), c["batch_size"])
        xb, mb = _subsample(x_all, data.mask, rows, c["points_per_shower"], rng)
        xb, mb = torch.as_tensor(xb).to(device), torch.as_tensor(mb).to(device)
        context = model.point_context(data.incident_energy[rows], n_pts[rows]).to(device)
        loss = (model.diffusion_loss(xb, mb, context, gen) if teacher is None
                else model.distillation_loss(teacher, xb, mb, context, gen))
        net_opt.zero_grad()
        loss.backward()
        net_opt.step()
        model.update_ema()
        state[key] += 1
        window.append(loss.item())
        if state[key] % 50 and state[key] != n_steps:
            return None
        state["history"].append({"phase": "diffusion" if teacher is None else "distillation", "step": state[key],
                                 "loss": float(np.mean(window))})
        text = f"loss {float(np.mean(window)):.4g}"
        window.clear()
        return text

    phases.append(Phase("point model" if teacher is None else "consistency distillation", n_steps, "steps",
                        lambda: state[key], point_step, opts.checkpoint_every))

    def save() -> Path:
        _unwrap(model)
        path = _save(model, name, state, opts, rank, optimizers)
        _wrap(model, world, device)
        return path

    run_phases(name, phases, budget, save, opts.progress and rank == 0)
    _unwrap(model)
    finished = state["step"] >= c["diffusion_steps"] if teacher is None else state["cm_step"] >= c["cm_steps"]
    if finished and teacher is None and rank == 0 and model.occupancy is None:
        model.eval()
        model.occupancy = _fit_occupancy(model, data, opts.occupancy_showers, opts.seed)
    state["untrained"] = _untrained(model, state, teacher is not None)
    state["finished"] = not state["untrained"]
    return _save(model, name, state, opts, rank, optimizers)


def _untrained(model, state: dict[str, Any], distilled: bool) -> list[str]:
    """The parts a (budget-stopped) run left short of its config, in words, for the checkpoint,
    the last line of ``train`` and the warning of ``sample``."""
    c, out = model.config, []
    if distilled:
        if state["cm_step"] < c["cm_steps"]:
            out.append(f"consistency distillation ({state['cm_step']} of {c['cm_steps']} steps)")
        return out
    if state["flow_epoch"] < c["flow_epochs"]:
        out.append(f"ShowerFlow ({state['flow_epoch']} of {c['flow_epochs']} epochs)")
    if state["step"] < c["diffusion_steps"]:
        out.append(f"point model ({state['step']} of {c['diffusion_steps']} steps)")
    if model.occupancy is None:
        out.append("occupancy calibration (not fitted)")
    return out


def _trained_parts(model) -> list[tuple[torch.nn.Module, str]]:
    """(parent, attribute) of every separately called trained module: ShowerFlow's flow, the point
    network, and CaloClouds' encoder and latent flow."""
    parts = [(model.flow, "flow"), (model.denoiser, "net")]
    return parts + [(model.denoiser, k) for k in ("encoder", "latent_flow") if hasattr(model.denoiser, k)]


def _wrap(model, world: int, device: str) -> None:
    """Each trained part in DistributedDataParallel (its gradients averaged over the ranks)."""
    if world > 1:
        for parent, attr in _trained_parts(model):
            setattr(parent, attr, ddp(getattr(parent, attr), device))


def _unwrap(model) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    for parent, attr in _trained_parts(model):
        if isinstance(getattr(parent, attr), DDP):
            setattr(parent, attr, getattr(parent, attr).module)
