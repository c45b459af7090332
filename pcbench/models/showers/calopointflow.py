"""CaloPointFlow II (Schnake, Krücker, Borras, arXiv:2403.15782; version I: arXiv:2211.15380; code
``simonschnake/CaloPointFlow`` at 6fca03b): a PointFlow-style VAE of CaloChallenge voxel showers
as point clouds, one point per voxel above the readout threshold.

A point is (z, r, f): the layer index, the radial bin and the energy fraction f = E / E_sum of
the shower; the angular bin alpha is not modelled (II drops it) and is drawn uniformly when the
points go back to voxels.  z and r are CDF-dequantised: bin k becomes cdf[k] + pmf[k] U(0, 1) with
the training points' empirical bin frequencies, then ndtri, so each marginal is N(0, 1).  f is
min-max scaled to the training range, logit-transformed and standardised.  Per shower:

- a conditional flow p(n', e' | E_inc') (zuko NSF), n' = log(n_points + U) - log sqrt(E_inc) and
  e' = log(E_sum / E_inc), both standardised; E_inc' = standardised log E_inc [MeV];
- an encoder q(z_lat | points) (per-point MLP, GELU; mean over the shower; MLP; mu, log var);
- a latent prior flow p(z_lat | E_inc', n', e') (zuko NICE couplings with RQS splines);
- the point flow p(point | set, E_inc', n', e', z_lat): ``deepset_flow.DeepSetFlow``.

Loss (the reference's per-dimension normalisation): NLL_cond / 2 + (-H[q] + NLL_prior) / latent_dim
+ mean over showers of the mean point NLL / 3; the flows see the true (n', e') (teacher forcing).
All normalisations are fitted once on the training showers (``PointFlowStats``; the reference
fits them during epoch 0).  Sampling: (n', e') -> n_points (clipped to [1, cells]) and E_sum; a
latent from the prior; the points jointly; z, r back to bins (inverse CDF), alpha per ring
(z, r) drawn without replacement in chunks of n_alpha (the reference's ``generate.py``); point
energies f / sum(f) * E_sum.  Points are placed uniformly inside their voxels; ``steps.project``
sums points that share a voxel and applies the readout threshold (``pipeline.project_showers``).
Geometries: CaloChallenge data sets 2 and 3 (every layer one alpha x r binning).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from scipy.special import ndtr
from torch import nn

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...errors import ConfigError
from ...geometry import CylindricalGeometry, get_geometry
from ..trainer import Phase, TrainOptions
from .base import ShowerGenerator, ShowerRun
from .deepset_flow import DeepSetFlow, masked_mean
from .flow import by_rows
from .phases import subsample
from .pipeline import PipelineSteps, sample_in_batches

__all__ = ["CaloPointFlow", "PointFlowStats", "ring_binning", "assign_alpha"]

_EPS = 1e-6  # the reference's shrink of [0, 1] to [eps, 1 - eps] before logit / ndtri


def ring_binning(geometry: Any) -> tuple[tuple[int, ...], int, int]:
    """(layer ids with voxels, n_alpha, n_r) of a CaloChallenge geometry whose layers share one
    binning; a one-line ConfigError otherwise."""
    if not isinstance(geometry, CylindricalGeometry):
        raise ConfigError(f"calopointflow models CaloChallenge voxels; grid {geometry.name!r} is not a "
                          "CaloChallenge geometry (train it on calochallenge-2 or -3 voxels)")
    binning = geometry.common_binning
    if binning is None:
        raise ConfigError(f"calopointflow needs every layer binned alike (data sets 2 and 3); {geometry.name} "
                          "has layers with different alpha x r binnings")
    return geometry.relevant_layers, binning.n_alpha, binning.n_r


@dataclass(frozen=True)
class PointFlowStats:
    """The normalisations fitted on the training showers (frozen; saved in the checkpoint)."""

    layer_ids: tuple[int, ...]   # z index -> layer id
    n_alpha: int
    n_r: int
    pmf_z: tuple[float, ...]     # the training points' frequencies of the z and r bins
    pmf_r: tuple[float, ...]
    frac_lo: float               # energy fractions E / E_sum: range, then mean and std of the logit
    frac_hi: float
    logit_mean: float
    logit_std: float
    n_mean: float                # n' = log(n_points + 1/2) - log sqrt(E_inc [MeV])
    n_std: float
    e_mean: float                # e' = log(E_sum / E_inc)
    e_std: float
    inc_mean: float              # log E_inc [MeV]
    inc_std: float
    max_points: int              # cells of the geometry: the largest point count

    @classmethod
    def fit(cls, data: ShowerPointSet, geometry: CylindricalGeometry) -> PointFlowStats:
        layer_ids, n_alpha, n_r = ring_binning(geometry)
        z, r, f, mask = encode_bins(data.points, data.mask, geometry, layer_ids)
        n = mask.sum(1)
        if np.any(n == 0):
            raise ConfigError(f"calopointflow: {int((n == 0).sum())} training showers have no point above the "
                              "readout threshold; remove them")
        e_sum = np.where(mask, data.points[..., 3], 0.0).astype(np.float64).sum(1)
        e_inc = data.incident_energy.astype(np.float64)
        fr = f[mask].astype(np.float64)
        lo, hi = float(fr.min()), float(fr.max())
        lg = _logit(_shrink((fr - lo) / max(hi - lo, 1e-30)))
        nn_ = np.log(n + 0.5) - 0.5 * np.log(e_inc)
        ee = np.log(e_sum / e_inc)
        li = np.log(e_inc)

        def pmf(k: np.ndarray, size: int) -> tuple[float, ...]:
            c = np.bincount(k, minlength=size).astype(np.float64)
            return tuple(float(v) for v in c / c.sum())

        return cls(layer_ids, n_alpha, n_r, pmf(z[mask], len(layer_ids)), pmf(r[mask], n_r), lo, hi,
                   float(lg.mean()), float(lg.std() + 1e-6), float(nn_.mean()), float(nn_.std() + 1e-6),
                   float(ee.mean()), float(ee.std() + 1e-6), float(li.mean()), float(li.std() + 1e-6),
                   geometry.n_cells)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PointFlowStats:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    # --- per-shower conditioning (numpy, float64) ----------------------------------------------
    def context(self, e_inc_mev: np.ndarray) -> np.ndarray:
        """(N, 1) E_inc' = standardised log E_inc."""
        return ((np.log(np.asarray(e_inc_mev, np.float64)) - self.inc_mean) / self.inc_std)[:, None]

    def encode_shower(self, n_points: np.ndarray, e_sum: np.ndarray, e_inc: np.ndarray, u: np.ndarray) -> np.ndarray:
        """(N, 2) (n', e'), the count dequantised by ``u`` ~ U(0, 1) (N,)."""
        n = (np.log(n_points + u) - 0.5 * np.log(e_inc) - self.n_mean) / self.n_std
        return np.column_stack([n, (np.log(e_sum / e_inc) - self.e_mean) / self.e_std])

    def decode_shower(self, c: np.ndarray, e_inc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n', e') (N, 2) -> n_points (N,) int in [1, max_points] and E_sum (N,) [MeV]."""
        log_n = np.clip(c[:, 0] * self.n_std + self.n_mean + 0.5 * np.log(e_inc), -1.0, np.log(self.max_points + 1))
        n = np.clip(np.floor(np.exp(log_n)), 1, self.max_points).astype(np.int64)
        log_e = np.clip(c[:, 1] * self.e_std + self.e_mean, -30.0, 5.0)
        return n, np.exp(log_e) * e_inc


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _shrink(p: Any) -> Any:
    """[0, 1] (clipped) -> [eps, 1 - eps] affinely (the reference's ``shrink``, before logit or ndtri)."""
    return p.clip(0, 1) * (1 - 2 * _EPS) + _EPS


def _expand(p: np.ndarray) -> np.ndarray:
    """The inverse of ``_shrink`` (clipped to [0, 1])."""
    return np.clip((p - _EPS) / (1 - 2 * _EPS), 0, 1)


def encode_bins(points: np.ndarray, mask: np.ndarray, geometry: CylindricalGeometry, layer_ids: tuple[int, ...]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pcbench points (N, P, 4) (x, y [mm], layer id, E [MeV]) -> z index, r bin (N, P) int64,
    energy fraction E / E_sum (N, P) float32 and the mask (points outside every voxel dropped)."""
    pos = np.full(max(layer_ids) + 1, -1, np.int64)
    pos[list(layer_ids)] = np.arange(len(layer_ids))
    t = geometry.voxel_table

    def rows(p: np.ndarray, m: np.ndarray) -> dict[str, np.ndarray]:
        cell = np.full(m.shape, -1, np.int64)
        cell[m] = geometry.cell_index(p[m][:, :3].astype(np.float64))
        ok = m & (cell >= 0)
        z = np.where(ok, pos[t["layer"][np.maximum(cell, 0)]], 0)
        r = np.where(ok, t["r_bin"][np.maximum(cell, 0)], 0)
        e = np.where(ok, p[..., 3], 0.0).astype(np.float64)
        f = e / np.maximum(e.sum(1, keepdims=True), 1e-30)
        return {"z": z, "r": r, "f": f.astype(np.float32), "m": ok}

    out = by_rows(rows, points, mask)
    return out["z"], out["r"], out["f"], out["m"]


def assign_alpha(shower: np.ndarray, ring: np.ndarray, n_alpha: int, rng: np.random.Generator) -> np.ndarray:
    """Alpha bins for points of showers (n,) in rings (n,) (any int key per (z, r)): the points of
    a ring, in random order, take chunks of n_alpha distinct alpha bins, each chunk a uniform draw
    without replacement (the reference's ``generate.py``): at most one point per cell for the
    first n_alpha points of a ring."""
    if len(ring) == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((rng.random(len(ring)), ring, shower))
    key = np.stack([shower[order], ring[order]], 1)
    start = np.r_[True, np.any(key[1:] != key[:-1], 1)]
    first = np.maximum.accumulate(np.where(start, np.arange(len(ring)), 0))
    rank = np.arange(len(ring)) - first
    chunk_start = start | (rank % n_alpha == 0)
    chunk = np.cumsum(chunk_start) - 1
    perms = np.argsort(rng.random((int(chunk[-1]) + 1, n_alpha)), 1)
    out = np.empty(len(ring), np.int64)
    out[order] = perms[chunk, rank % n_alpha]
    return out


class _Encoder(nn.Module):
    """q(z_lat | shower): per-point MLP (GELU, ``point_layers`` and a last linear layer of the same
    width), the mean over the shower's points, an MLP (``latent_layers``, GELU after each) and a
    linear head to (mu, log var); (B, P, 3), (B, P) -> 2 x (B, latent)."""

    def __init__(self, latent: int, point_layers: tuple[int, ...], latent_layers: tuple[int, ...]):
        super().__init__()
        from zuko.nn import MLP

        self.point = MLP(3, point_layers[-1], list(point_layers), activation=nn.GELU)
        self.head = MLP(point_layers[-1], 2 * latent, list(latent_layers), activation=nn.GELU)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(masked_mean(self.point(x), mask)).chunk(2, -1)


class CaloPointFlow(ShowerGenerator):
    """The generator (module docstring); ``full`` = the reference's d2_II config, ``small`` = CPU minutes."""

    name = "calopointflow"
    configs: dict[str, dict[str, Any]] = {
        "full": {"grid": "calochallenge-2", "latent_dim": 128, "encoder_point_layers": [64, 128, 1024],
                 "encoder_latent_layers": [1024, 512, 512], "cond_transforms": 12, "cond_bins": 12,
                 "cond_hidden": [128, 128, 128], "latent_transforms": 8, "latent_bins": 8,
                 "latent_hidden": [1024, 1024, 1024], "point_transforms": 12, "point_bins": 8,
                 "point_hidden": [128, 128, 128], "point_net": [64, 128, 512], "reduce_net": [512, 256, 128],
                 "epochs": 100, "batch_size": 256, "lr": 1e-3, "weight_decay": 0.01, "grad_clip": 0.0,
                 "points_per_shower": 0},
        "small": {"grid": "calochallenge-2", "latent_dim": 16, "encoder_point_layers": [32, 64, 128],
                  "encoder_latent_layers": [64], "cond_transforms": 4, "cond_bins": 8, "cond_hidden": [64, 64],
                  "latent_transforms": 4, "latent_bins": 8, "latent_hidden": [128, 128], "point_transforms": 6,
                  "point_bins": 8, "point_hidden": [64, 64], "point_net": [16, 32], "reduce_net": [32, 16],
                  "epochs": 50, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.01, "grad_clip": 1.0,
                  "points_per_shower": 256},
    }

    def __init__(self, config: dict[str, Any], stats: PointFlowStats):
        super().__init__()
        import zuko
        from zuko.transforms import MonotonicRQSTransform

        c = self.config = dict(config)
        self.stats = stats
        lat = c["latent_dim"]
        # slope 1e-4: zuko 1.1's default, which the reference ran with (1.6's is 1e-3)
        self.cond_flow = zuko.flows.NSF(2, context=1, bins=c["cond_bins"], transforms=c["cond_transforms"],
                                        randperm=True, hidden_features=list(c["cond_hidden"]), slope=1e-4)
        self.encoder = _Encoder(lat, tuple(c["encoder_point_layers"]), tuple(c["encoder_latent_layers"]))
        b = c["latent_bins"]
        self.latent_flow = zuko.flows.NICE(lat, context=3, transforms=c["latent_transforms"], randmask=True,
                                           univariate=partial(MonotonicRQSTransform, slope=1e-4),
                                           shapes=[(b,), (b,), (b - 1,)], hidden_features=list(c["latent_hidden"]))
        self.point_flow = DeepSetFlow(3, 3 + lat, c["point_transforms"], c["point_bins"], tuple(c["point_hidden"]),
                                      tuple(c["point_net"]), tuple(c["reduce_net"]))
        s = stats
        for k, pmf in (("z", s.pmf_z), ("r", s.pmf_r)):
            p = torch.tensor(pmf, dtype=torch.float32)
            self.register_buffer(f"pmf_{k}", p, persistent=False)
            self.register_buffer(f"cdf_{k}", torch.cat([p.new_zeros(1), p.cumsum(0)])[:-1], persistent=False)

    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> CaloPointFlow:
        return cls(config, PointFlowStats.fit(data, get_geometry(config["grid"])))

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CaloPointFlow:
        return cls(payload["config"], PointFlowStats.from_dict(payload["stats"]))

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "stats": self.stats.to_dict()}

    # --- model space ---------------------------------------------------------------------------
    def to_model(self, z: torch.Tensor, r: torch.Tensor, f: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Bins z, r (B, P) long, fractions f (B, P) and dequantisation noise u (B, P, 2) ~ U(0, 1)
        -> model points (B, P, 3): ndtri(cdf[k] + pmf[k] u) for z and r, standardised logit of the
        min-max scaled fraction."""
        s = self.stats
        qz = _shrink(self.cdf_z[z] + self.pmf_z[z] * u[..., 0])
        qr = _shrink(self.cdf_r[r] + self.pmf_r[r] * u[..., 1])
        p = _shrink((f - s.frac_lo) / max(s.frac_hi - s.frac_lo, 1e-30))
        lf = (torch.log(p) - torch.log1p(-p) - s.logit_mean) / s.logit_std
        return torch.stack([torch.special.ndtri(qz), torch.special.ndtri(qr), lf], -1)

    def from_model(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model points (..., 3) -> z index, r bin (int64) and fraction (float64)."""
        s = self.stats

        def bins(y: np.ndarray, pmf: tuple[float, ...]) -> np.ndarray:
            edges = np.concatenate([[0.0], np.cumsum(pmf)])
            return np.clip(np.searchsorted(edges, _expand(ndtr(y)), side="right") - 1, 0, len(pmf) - 1)

        lf = x[..., 2] * s.logit_std + s.logit_mean
        f = _expand(1.0 / (1.0 + np.exp(-np.clip(lf, -50, 50)))) * (s.frac_hi - s.frac_lo) + s.frac_lo
        return bins(x[..., 0], s.pmf_z), bins(x[..., 1], s.pmf_r), f

    # --- training ------------------------------------------------------------------------------
    def losses(self, z: torch.Tensor, r: torch.Tensor, f: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor,
               ctx: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The three loss terms on a batch: bins and fractions of (a subset of) each shower's points
        (B, P), its mask, the dequantised (n', e') (B, 2) and E_inc' (B, 1); noise from ``generator``."""
        dev = z.device
        lat = self.config["latent_dim"]
        u = torch.rand((*z.shape, 2), generator=generator, device=dev)
        x = self.to_model(z, r, f, u)
        cond_nll = -self.cond_flow(ctx).log_prob(cond).mean() / 2
        mu, logvar = self.encoder(x, mask)
        latent = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator, device=dev)
        c3 = torch.cat([ctx, cond], -1)
        entropy = 0.5 * (logvar + 1 + math.log(2 * math.pi)).sum(-1)
        kl = (-entropy - self.latent_flow(c3).log_prob(latent)).mean() / lat
        logp = self.point_flow(x, mask, torch.cat([c3, latent], -1))
        m = mask.to(logp.dtype)
        points = -((logp * m).sum(1) / m.sum(1).clamp(min=1)).mean() / 3
        return {"cond": cond_nll, "kl": kl, "points": points}

    def initial_state(self) -> dict[str, Any]:
        return {"epoch": 0, "history": []}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": torch.optim.AdamW(self.parameters(), lr=self.config["lr"],
                                         weight_decay=self.config["weight_decay"])}

    def training_arrays(self, data: ShowerPointSet) -> dict[str, np.ndarray]:
        """Per shower: bins and fractions (N, P) packed as (N, P, 3) float32, mask, point count,
        E_sum [MeV] and E_inc [MeV]."""
        z, r, f, m = encode_bins(data.points, data.mask, self.grid, self.stats.layer_ids)
        e_sum = np.where(m, data.points[..., 3], 0.0).astype(np.float64).sum(1)
        return {"x": np.stack([z, r, f], -1).astype(np.float32), "mask": m, "n": m.sum(1).astype(np.float64),
                "e_sum": e_sum, "e_inc": data.incident_energy.astype(np.float64)}

    def batch(self, a: dict[str, np.ndarray], rows: np.ndarray, rng: np.random.Generator, device: str | torch.device
              ) -> tuple[torch.Tensor, ...]:
        """Tensors for ``losses`` of showers ``rows``: at most ``points_per_shower`` random points
        each (0: all), the padding trimmed; the count dequantised with ``rng``."""
        k = self.config["points_per_shower"] or a["x"].shape[1]
        xb, mb = subsample(a["x"], a["mask"], rows, k, rng)
        width = max(int(mb.sum(1).max()), 1)
        xb, mb = torch.as_tensor(xb[:, :width]).to(device), torch.as_tensor(mb[:, :width]).to(device)
        cond = self.stats.encode_shower(a["n"][rows], a["e_sum"][rows], a["e_inc"][rows], rng.random(len(rows)))
        ctx = self.stats.context(a["e_inc"][rows])
        as_t = lambda v: torch.as_tensor(v, dtype=torch.float32).to(device)  # noqa: E731
        return xb[..., 0].long(), xb[..., 1].long(), xb[..., 2], mb, as_t(cond), as_t(ctx)

    def phases(self, run: ShowerRun) -> list[Phase]:
        c, state = self.config, run.state
        a = self.training_arrays(run.data)
        opt = run.optimizers["net"]
        params = [p for p in self.parameters() if p.requires_grad]
        gen = torch.Generator(device=run.device)

        def epoch() -> str:
            e = state["epoch"]
            for g in opt.param_groups:  # cosine annealing per epoch (the reference's CosineAnnealingLR)
                g["lr"] = c["lr"] * 0.5 * (1 + math.cos(math.pi * e / c["epochs"]))
            rng = np.random.default_rng([run.opts.seed, 7, e, run.rank])
            n = len(a["n"])
            usable = n - n % run.world  # as many batches on every rank (DDP's all-reduce)
            order = np.random.default_rng([run.opts.seed, 7, e]).permutation(n)[:usable][run.rank::run.world]
            sums: dict[str, list[float]] = {"cond": [], "kl": [], "points": []}
            for i, s in enumerate(range(0, len(order), c["batch_size"])):
                gen.manual_seed(run.opts.seed * 1_000_003 + (e * 100_000 + i) * run.world + run.rank)
                parts = self.losses(*self.batch(a, order[s:s + c["batch_size"]], rng, run.device), gen)
                loss = parts["cond"] + parts["kl"] + parts["points"]
                opt.zero_grad()
                loss.backward()
                if c["grad_clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(params, c["grad_clip"])
                opt.step()
                for k, v in parts.items():
                    sums[k].append(v.item())
            state["epoch"] += 1
            rec = {k: float(np.mean(v)) for k, v in sums.items()}
            rec["loss"] = sum(rec.values())
            state["history"].append({"phase": "calopointflow", "epoch": state["epoch"], **rec})
            return f"loss {rec['loss']:.4g} (cond {rec['cond']:.3g}, kl {rec['kl']:.3g}, points {rec['points']:.3g})"

        every = 5 if run.opts.checkpoint_every is None else run.opts.checkpoint_every
        return [Phase("CaloPointFlow", c["epochs"], "epochs", lambda: state["epoch"], epoch, every)]

    def trained_parts(self) -> list[tuple[nn.Module, str]]:
        """The conditional flow, the encoder, the latent flow and the point flow."""
        return [(self, k) for k in ("cond_flow", "encoder", "latent_flow", "point_flow")]

    def untrained(self, state: dict[str, Any]) -> list[str]:
        e = self.config["epochs"]
        return [] if state["epoch"] >= e else [f"CaloPointFlow ({state['epoch']} of {e} epochs)"]

    # --- sampling ------------------------------------------------------------------------------
    def sample(self, e_inc_mev: np.ndarray, seed: int = 0, batch_size: int = 64,
               steps: PipelineSteps = PipelineSteps(),
               progress: Callable[[int], None] | None = None) -> ShowerPointSet | VoxelShowerSet:
        """Showers at the given incident energies [MeV], batch by batch: points (x, y [mm], layer
        id + U[0, 1), E [MeV]) uniform inside their voxels, or with ``steps.project`` voxels
        (duplicates summed, readout threshold); only ``project`` of ``steps`` applies."""
        e_inc_mev = np.asarray(e_inc_mev, np.float64)
        return sample_in_batches(e_inc_mev, batch_size, seed, self._sample_batch, self.grid, steps.project, progress)

    @torch.no_grad()
    def _sample_batch(self, e_inc: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        s, dev = self.stats, self.pmf_z.device
        ctx = torch.as_tensor(s.context(e_inc), dtype=torch.float32, device=dev)
        with torch.random.fork_rng(devices=[]):  # zuko samples from torch's global generator
            torch.manual_seed(seed)
            cond = self.cond_flow(ctx).sample()
            c3 = torch.cat([ctx, cond], -1)
            latent = self.latent_flow(c3).sample()
        n, e_sum = s.decode_shower(cond.cpu().numpy().astype(np.float64), e_inc)
        width = int(n.max())
        mask = np.arange(width)[None, :] < n[:, None]
        gen = torch.Generator(device=dev).manual_seed(seed)
        x = self.point_flow.sample(torch.as_tensor(mask, device=dev), torch.cat([c3, latent], -1), gen)
        z, r, f = self.from_model(x.cpu().numpy().astype(np.float64))
        rng = np.random.default_rng(seed)
        rows, cols = np.nonzero(mask)
        alpha = assign_alpha(rows, z[mask] * s.n_r + r[mask], s.n_alpha, rng)
        g = self.grid
        ids = [lay.id for lay in g.layers]
        first = g.layer_offsets[[ids.index(i) for i in s.layer_ids]]  # the first voxel of each z index
        cell = first[z[mask]] + alpha * s.n_r + r[mask]
        xyz = g.sample_in_cells(cell, rng).astype(np.float32).astype(np.float64)
        ok = g.cell_index(xyz) == cell  # a draw that float32 rounds over an edge: the voxel centre
        xyz = np.where(ok[:, None], xyz, g.cell_centres[cell])
        f = np.where(mask, f, 0.0)
        energy = f / f.sum(1, keepdims=True) * e_sum[:, None]
        pts = np.zeros((len(e_inc), width, 4), np.float32)
        pts[rows, cols, :3] = xyz
        pts[rows, cols, 3] = energy[mask]
        return pts, mask
