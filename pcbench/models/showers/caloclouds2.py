"""CaloClouds II (Buhmann et al., arXiv:2309.05704): ShowerFlow for the per-shower quantities and a
PointWise Net trained as an EDM diffusion model (preconditioning, loss and log-normal noise of
Karras et al.), sampled with Heun's solver (13 steps = 25 evaluations by default) on the EMA
weights, followed by the CaloClouds calibrations (``pipeline``).

Points are modelled as the two plane coordinates ((x, z) on the ILD grid, (x, y) on CaloChallenge
voxels) scaled to [-1, 1] over the training points' mean +- 2 std (the reference code scales the
whole 400 mm region; showers fill a few per cent of it, and our small configs train for minutes,
so the data is brought to the scale sigma_data = 0.5 assumes), the depth as the layer index
scaled to [-1, 1], and E / (99 % quantile of the training points' energies).  The point model is
conditioned on (2 c(E_inc) - 1, n_points / max_points * 2 - 1), c = ``ShowerStats.condition``
(E_inc [GeV] / 100 on ILD).  The geometry is the config's ``grid``: ``ild-ecal``, or a CaloChallenge
geometry for models trained on voxels turned into points.
"""

from __future__ import annotations

from collections.abc import Callable

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...geometry import LayerStack, get_geometry, layer_stack, project
from ..trainer import Phase, TrainOptions
from .base import ShowerGenerator, ShowerRun
from .edm import Denoiser, edm_loss, karras_sigmas, sample_heun
from .flow import ShowerFlow, ShowerStats, by_rows
from .phases import flow_phase, point_phase
from .pipeline import (OccupancyCalibration, PipelineSteps, assign_layers, calibrate_cog,
                       calibrate_layer_energy, sample_in_batches)
from .pointwise import PointWiseNet

__all__ = ["CaloClouds2"]


class CaloClouds2(ShowerGenerator):
    """The generator; ``configs`` are the full (published) and small (CPU, minutes) settings.
    Training: ShowerFlow epochs, then the point model's EDM steps, then the occupancy fit."""

    name = "caloclouds2"
    configs: dict[str, dict[str, Any]] = {
        "full": {"widths": [128, 256, 512, 256, 128], "flow_transforms": 10, "flow_hidden": [256, 256],
                 "flow_epochs": 100, "flow_batch_size": 256, "flow_lr": 1e-3, "diffusion_steps": 800_000,
                 "batch_size": 128, "points_per_shower": 6000, "lr": 1e-4, "ema_decay": 0.9999,
                 "sigma_data": 0.5, "p_mean": -1.2, "p_std": 1.2, "sigma_min": 0.002, "sigma_max": 80.0,
                 "rho": 7.0, "num_steps": 13, "cm_steps": 0, "cm_scales": 18, "grid": "ild-ecal"},
        "small": {"widths": [64, 128, 128, 64], "flow_transforms": 4, "flow_hidden": [64, 64],
                  "flow_epochs": 250, "flow_batch_size": 128, "flow_lr": 2e-3, "diffusion_steps": 3000,
                  "batch_size": 32, "points_per_shower": 256, "lr": 1e-3, "ema_decay": 0.995,
                  "sigma_data": 0.5, "p_mean": -1.2, "p_std": 1.2, "sigma_min": 0.002, "sigma_max": 80.0,
                  "rho": 7.0, "num_steps": 13, "cm_steps": 0, "cm_scales": 18, "grid": "ild-ecal"},
    }
    consistency = False

    def __init__(self, config: dict[str, Any], stats: ShowerStats):
        super().__init__()
        self.config = dict(config)
        self.stats = stats
        self.flow = ShowerFlow(stats, config["flow_transforms"], tuple(config["flow_hidden"]))
        net = PointWiseNet(4, 2, tuple(config["widths"]))
        self.denoiser = Denoiser(net, config["sigma_data"], consistency=self.consistency, sigma_min=config["sigma_min"])
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)
        self.occupancy: OccupancyCalibration | None = None

    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> CaloClouds2:
        stats = ShowerStats.fit(data.points, data.mask, layer_stack(get_geometry(config["grid"])),
                                data.incident_energy, log_point_energy=log_point_energy)
        return cls(config, stats)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CaloClouds2:
        model = cls(payload["config"], ShowerStats.from_dict(payload["stats"]))
        if payload.get("occupancy") is not None:
            model.occupancy = OccupancyCalibration(*map(tuple, payload["occupancy"]))
        return model

    def payload(self) -> dict[str, Any]:
        occupancy = None if self.occupancy is None else [list(self.occupancy.real_points_to_hits),
                                                         list(self.occupancy.gen_hits_to_points)]
        return {**super().payload(), "stats": self.stats.to_dict(), "occupancy": occupancy}

    @property
    def layers(self) -> LayerStack:
        return layer_stack(self.grid)

    # --- coordinates ---------------------------------------------------------------------------
    def to_model(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, P, 4) pcbench points (point convention, MeV) -> model space (float32); padded points stay 0."""
        return by_rows(self._to_model, points, mask)

    def _to_model(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        g, s = self.layers, self.stats
        u, v = g.plane_axes
        layer = g.layer_of(points[..., g.depth_axis]).reshape(mask.shape)
        out = np.stack([(points[..., u] - s.u_range[0]) / (s.u_range[1] - s.u_range[0]) * 2 - 1,
                        (np.maximum(layer, 0) + 0.5) / g.n_layers * 2 - 1,
                        (points[..., v] - s.v_range[0]) / (s.v_range[1] - s.v_range[0]) * 2 - 1,
                        s.point_energy_to_model(points[..., 3])], -1)
        return np.where(mask[..., None], out, 0.0).astype(np.float32)

    def point_context(self, e_inc_mev: np.ndarray, n_points: np.ndarray) -> torch.Tensor:
        """(N, 2) conditioning of the point model."""
        c = np.column_stack([self.stats.condition(e_inc_mev) * 2.0 - 1, np.asarray(n_points) / self.stats.max_points * 2 - 1])
        return torch.as_tensor(c, dtype=torch.float32)

    # --- training ------------------------------------------------------------------------------
    def diffusion_loss(self, x: torch.Tensor, mask: torch.Tensor, context: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        return edm_loss(self.denoiser, x, context, mask, self.config["p_mean"], self.config["p_std"], generator)

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = self.config["ema_decay"]
        for p_ema, p in zip(self.ema.parameters(), self.denoiser.parameters()):
            p_ema.mul_(decay).add_(p.detach(), alpha=1 - decay)

    def initial_state(self) -> dict[str, Any]:
        return {"flow_epoch": 0, "step": 0, "cm_step": 0, "history": []}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"flow": torch.optim.Adam(self.flow.parameters(), lr=self.config["flow_lr"]),
                "net": torch.optim.RAdam(self.denoiser.parameters(), lr=self.config["lr"])}

    def phases(self, run: ShowerRun) -> list[Phase]:
        return [flow_phase(self, run), point_phase(self, run, "diffusion", "step", self.config["diffusion_steps"], 2,
                                                   self.diffusion_loss)]

    def trained_parts(self) -> list[tuple[nn.Module, str]]:
        """ShowerFlow's flow, the point network, and CaloClouds' encoder and latent flow."""
        parts = [(self.flow, "flow"), (self.denoiser, "net")]
        return parts + [(self.denoiser, k) for k in ("encoder", "latent_flow") if hasattr(self.denoiser, k)]

    def finish(self, run: ShowerRun) -> None:
        if self.occupancy is None:
            self.occupancy = self.fit_occupancy(run.data, run.opts.occupancy_showers, run.opts.seed)

    def untrained(self, state: dict[str, Any]) -> list[str]:
        c, out = self.config, []
        if state["flow_epoch"] < c["flow_epochs"]:
            out.append(f"ShowerFlow ({state['flow_epoch']} of {c['flow_epochs']} epochs)")
        if state["step"] < c["diffusion_steps"]:
            out.append(f"point model ({state['step']} of {c['diffusion_steps']} steps)")
        if self.occupancy is None:
            out.append("occupancy calibration (not fitted)")
        return out

    def fit_occupancy(self, data: ShowerPointSet, n: int, seed: int) -> OccupancyCalibration:
        """Cubic fits of cell hits vs points on ``n`` real showers, and of points vs hits on showers
        generated without the occupancy calibration (the geometry's readout threshold)."""
        g, threshold = self.grid, self.layers.threshold
        rows = np.random.default_rng(seed).choice(len(data), min(n, len(data)), replace=False)
        real = data.subset(np.sort(rows))
        real_hits = project(real.points, g, real.mask, threshold=threshold, output="sparse").hits.counts
        gen = self.sample(real.incident_energy, seed=seed + 1, steps=PipelineSteps(occupancy=False))
        gen_hits = project(gen.points, g, gen.mask, threshold=threshold, output="sparse").hits.counts
        return OccupancyCalibration(OccupancyCalibration.fit_cubic(real.mask.sum(1), real_hits),
                                    OccupancyCalibration.fit_cubic(gen_hits, gen.mask.sum(1)))

    # --- sampling ------------------------------------------------------------------------------
    def generate_points(self, context: torch.Tensor, n_max: int, generator: torch.Generator,
                        num_steps: int | None = None) -> torch.Tensor:
        """(B, n_max, 4) points in model space from noise (Heun, EMA weights)."""
        c = self.config
        x = torch.randn((len(context), n_max, 4), generator=generator, device=context.device) * c["sigma_max"]
        sigmas = karras_sigmas(num_steps or c["num_steps"], c["sigma_min"], c["sigma_max"], c["rho"]).to(context.device)
        return self.in_slices(lambda xs, cs: sample_heun(self.ema, xs, sigmas, cs), x, context)

    @staticmethod
    def in_slices(fn, x: torch.Tensor, context: torch.Tensor, points: int = 2048) -> torch.Tensor:
        """fn(x, context) over slices of whole showers, about ``points`` points each (at least one
        shower): the network is point-wise, and small slices keep the activations in cache (on 2
        CPU cores the one-step model ran 1.7x faster per shower at batch 64 of 1,500-point
        showers than on the whole batch, ``benchmarks/shower_generation_time.py``)."""
        step = max(1, points // max(x.shape[1], 1))
        if step >= len(x):
            return fn(x, context)
        return torch.cat([fn(x[i:i + step], context[i:i + step]) for i in range(0, len(x), step)])

    def sample(self, e_inc_mev: np.ndarray, seed: int = 0, batch_size: int = 64,
               steps: PipelineSteps = PipelineSteps(), num_steps: int | None = None,
               progress: Callable[[int], None] | None = None) -> ShowerPointSet | VoxelShowerSet:
        """Showers at the given incident energies [MeV]: the whole pipeline, batch by batch; points
        (point convention, MeV), or with ``steps.project`` cell hits (grid) or voxels (CaloChallenge).
        ``progress`` is called with the number of showers of each finished batch."""
        e_inc_mev = np.asarray(e_inc_mev, np.float64)
        return sample_in_batches(e_inc_mev, batch_size, seed, lambda e, s: self._sample_batch(e, s, steps, num_steps), self.grid, steps.project, progress)

    @torch.no_grad()
    def _sample_batch(self, e_inc: np.ndarray, seed: int, steps: PipelineSteps,
                      num_steps: int | None) -> tuple[np.ndarray, np.ndarray]:
        g, s = self.layers, self.stats
        q = self.flow.sample(e_inc, seed)
        n = q["n_points"]
        if steps.occupancy and self.occupancy is not None:
            n = np.clip(np.rint(self.occupancy(n)), 1, s.max_points)
        per_layer = np.floor(q["point_fractions"] * n[:, None])
        n_eff = np.maximum(per_layer.sum(1), 1) if steps.layers else n
        if steps.layers:
            per_layer[per_layer.sum(1) == 0, int(np.argmax(q["point_fractions"].mean(0)))] = 1
        n_max = int(n_eff.max())
        gen = torch.Generator(device=self.ema.net.fourier.device).manual_seed(seed)
        context = self.point_context(e_inc, n_eff).to(self.ema.net.fourier.device)
        x = self.generate_points(context, n_max, gen, num_steps).cpu().numpy().astype(np.float64)
        mask = np.arange(n_max)[None, :] < n_eff[:, None]
        u, v = g.plane_axes
        d = g.depth_axis
        pts = np.zeros((len(e_inc), n_max, 4))
        pts[..., u] = (x[..., 0] + 1) / 2 * (s.u_range[1] - s.u_range[0]) + s.u_range[0]
        pts[..., v] = (x[..., 2] + 1) / 2 * (s.v_range[1] - s.v_range[0]) + s.v_range[0]
        if steps.layers:
            pts[..., d] = assign_layers(x[..., 1], mask, per_layer, g.depths)
        else:
            layer = np.clip(np.floor((x[..., 1] + 1) / 2 * g.n_layers), 0, g.n_layers - 1).astype(np.int64)
            pts[..., d] = g.depths[layer]
        energy = s.point_energy_from_model(x[..., 3])
        layer = g.layer_of(pts[..., d]).reshape(mask.shape)
        if steps.layer_energy:
            energy = calibrate_layer_energy(energy, layer, mask, q["energy_fractions"] * q["e_sum"][:, None])
        mask = mask & (energy > 0)
        pts[..., 3] = energy
        if steps.cog:
            pts[..., u] = calibrate_cog(pts[..., u], energy, mask, q["cog"][:, u])
            pts[..., v] = calibrate_cog(pts[..., v], energy, mask, q["cog"][:, v])
        pts[~mask] = 0.0
        return pts.astype(np.float32), mask
