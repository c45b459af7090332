"""Training the shower generators: ShowerFlow, the CaloClouds II point model, consistency
distillation, the occupancy calibration; checkpoints with config and data provenance, resume,
a wall-clock budget, and DDP under ``torchrun`` (the same command; gloo on CPU, nccl on GPUs).

The point model has no interaction between points, so each step trains on a random subset of
``points_per_shower`` points of each shower (conditioned on the shower's true number of points):
the loss is the same in expectation and the step far cheaper.

CaloChallenge voxel showers are trained on as point clouds (``as_point_showers``): one point per
voxel at or above the readout threshold, placed uniformly inside the voxel, carrying its energy;
the model then generates for that geometry, and its samples are projected back onto the voxels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from .._progress import TrainingProgress
from ..data.containers import ShowerPointSet, VoxelShowerSet
from ..errors import CheckpointError, PcbenchError, UsageError
from ..geometry import get_geometry, layer_stack, project, to_points
from ..geometry.cylindrical import GEOMETRY_OF_VOXEL_COUNT
from ..metrics.calo_features import threshold_voxels
from .base import load_checkpoint_file, resume_path, save_checkpoint
from .caloclouds2 import CaloClouds2
from .caloclouds2_cm import CaloClouds2CM
from .registry import SHOWER_MODELS
from .shower_baseline import IndependentShowerPoints
from .shower_flow import ShowerStats, shower_quantities
from .shower_pipeline import OccupancyCalibration, PipelineSteps
from .training import distributed_context

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
    name = data.geometry or GEOMETRY_OF_VOXEL_COUNT.get(data.num_voxels)
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


class _Run:
    """Bookkeeping of one training run: progress bar, budget, checkpoints."""

    def __init__(self, name: str, model, state: dict[str, Any], opts: ShowerTrainOptions, rank: int, world: int,
                 parts: list[tuple[str, int, str]], done: tuple[int, ...]):
        self.name, self.model, self.state, self.opts, self.rank, self.world = name, model, state, opts, rank, world
        self.started = time.perf_counter()
        self.bar = TrainingProgress(name, parts, opts.max_minutes, opts.progress and rank == 0, done)

    def out_of_time(self) -> bool:
        """Whether the budget is spent; under DDP every rank takes the same decision (the first
        rank past the budget stops them all), so that no rank waits in an all-reduce alone."""
        if self.opts.max_minutes is None:
            return False
        late = time.perf_counter() - self.started > 60 * self.opts.max_minutes
        if self.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([float(late)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            late = bool(flag.item())
        return late

    def tick(self, part: int, done: int, loss: float) -> None:
        self.bar.update(part, done, f"loss {loss:.4g}")

    def save(self, optimizers: dict[str, torch.optim.Optimizer] | None = None) -> Path:
        path = Path(self.opts.out_dir) / "last.pt"
        if self.rank == 0:
            state = {**self.state, "optimizers": {k: o.state_dict() for k, o in (optimizers or {}).items()}}
            save_checkpoint(path, _payload(self.model, self.name, state, self.opts))
        return path

    def close(self) -> None:
        self.bar.close()


def train_shower_model(name: str, config: dict[str, Any], data: ShowerPointSet | VoxelShowerSet,
                       opts: ShowerTrainOptions) -> Path:
    """Train shower generator ``name`` on ``data`` (ILD-like point showers in mm and MeV, or
    CaloChallenge voxel showers, then trained on as points for their geometry, which replaces the
    config's ``grid``); returns ``last.pt``."""
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
    if resumed is not None:
        saved = load_checkpoint_file(resumed, device)
        model.load_state_dict(saved["state_dict"])
        state = saved["train_state"]
        for k, o in (("flow", flow_opt), ("net", net_opt)):
            if k in state.get("optimizers", {}):
                o.load_state_dict(state["optimizers"][k])
        state.pop("optimizers", None)
        torch.set_rng_state(saved["torch_rng"])
    state["world_size"] = world  # of the latest (resumed) run
    _wrap(model, world, device)
    x_all = model.to_model(data.points, data.mask)
    n_pts = data.mask.sum(1)
    if teacher is None:
        parts = [("ShowerFlow", c["flow_epochs"], "epochs"), ("point model", c["diffusion_steps"], "steps")]
        done = (state["flow_epoch"], state["step"])
    else:
        parts, done = [("consistency distillation", c["cm_steps"], "steps")], (state["cm_step"],)
    run = _Run(name, model, state, opts, rank, world, parts, done)
    window: list[float] = []  # losses since the last history entry (their mean is recorded)
    try:
        if teacher is None:
            feats = torch.as_tensor(model.flow.encode(shower_quantities(data.points, data.mask, model.layers),
                                                      data.incident_energy))
            flow = model.flow.flow
            ctx = model.flow.context(data.incident_energy)
            while state["flow_epoch"] < c["flow_epochs"] and not run.out_of_time():
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
                run.tick(0, state["flow_epoch"], float(np.mean(losses)))
        # the point model: EDM (CaloClouds II), DDPM (CaloClouds) or consistency distillation (CM)
        key, n_steps, stream = ("step", c["diffusion_steps"], 2) if teacher is None else ("cm_step", c["cm_steps"], 3)
        part = 0 if teacher else 1
        gen = torch.Generator(device=device)
        while state[key] < n_steps and not run.out_of_time():
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
            if state[key] % 50 == 0 or state[key] == n_steps:
                state["history"].append({"phase": "diffusion" if teacher is None else "distillation", "step": state[key],
                                         "loss": float(np.mean(window))})
                run.tick(part, state[key], float(np.mean(window)))
                window = []
            if state[key] % opts.checkpoint_every == 0:
                _unwrap(model)
                run.save({"flow": flow_opt, "net": net_opt})
                _wrap(model, world, device)
        _unwrap(model)
        finished = state["step"] >= c["diffusion_steps"] if teacher is None else state["cm_step"] >= c["cm_steps"]
        if finished and teacher is None and rank == 0 and model.occupancy is None:
            model.eval()
            model.occupancy = _fit_occupancy(model, data, opts.occupancy_showers, opts.seed)
        state["untrained"] = _untrained(model, state, teacher is not None)
        state["finished"] = not state["untrained"]
        return run.save({"flow": flow_opt, "net": net_opt})
    finally:
        run.close()


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
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device] if device.startswith("cuda") else None
        for parent, attr in _trained_parts(model):
            setattr(parent, attr, DDP(getattr(parent, attr), device_ids=ids))


def _unwrap(model) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    for parent, attr in _trained_parts(model):
        if isinstance(getattr(parent, attr), DDP):
            setattr(parent, attr, getattr(parent, attr).module)
