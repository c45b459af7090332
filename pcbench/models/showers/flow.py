"""ShowerFlow: a normalising flow for the per-shower quantities, conditioned on the incident energy
(CaloClouds, arXiv:2305.04847; CaloClouds II, arXiv:2309.05704).

The 65 quantities per shower: number of points, visible energy, centre of gravity (x, y, z), and
the fractions of points and of energy in each of the 30 layers (ILD; any ``LayerStack``: 5 + 2 L).
The flow is zuko's neural spline flow with rational-quadratic spline coupling transforms
(``passes=2``), conditioned on the incident energy as ``ShowerStats.condition`` scales it:
E_inc [GeV] / 100 for a narrow range (CaloClouds' convention, ILD's 10-90 GeV), and
log(E_inc / E_min) / log(E_max / E_min) when the training energies span more than a factor 10
(CaloChallenge: 1 GeV - 1 TeV).  Over such a wide range the flow also sees the visible energy as
a fraction of E_inc and the number of points on a log scale (both vary by decades with E_inc
otherwise).  ``ShowerStats`` holds the normalisations fitted on the training showers, and the
point-energy scale of the point model (linear, or logarithmic for voxel energies that span six
decades).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ...geometry.layers import LayerStack, layer_stack

__all__ = ["ShowerStats", "shower_quantities", "ShowerFlow", "by_rows"]


@dataclass(frozen=True)
class ShowerStats:
    """Normalisations of one training set (all in the units of pcbench points: mm, MeV)."""

    n_layers: int
    max_points: int
    n_scale: float         # points per shower are divided by this
    e_scale: float         # visible energy [MeV] is divided by this
    cog_mean: tuple[float, float, float]
    cog_std: tuple[float, float, float]
    point_e_scale: float   # point energies [MeV] are divided by this for the diffusion
    u_range: tuple[float, float]  # the window of the plane coordinates scaled to [-1, 1] [mm]
    v_range: tuple[float, float]
    e_inc_log: bool = False       # wide range: log-scaled conditioning between e_inc_lo and e_inc_hi [MeV],
    e_inc_lo: float = 0.0         # e_sum / E_inc and log n_points as flow features; else linear
    e_inc_hi: float = 1e5         # conditioning (E_inc - lo) / (hi - lo) (E_inc [GeV] / 100 by default)
    point_e_log: bool = False     # point energies log-scaled over [point_e_lo, point_e_hi] [MeV] (else / point_e_scale)
    point_e_lo: float = 0.0
    point_e_hi: float = 0.0

    @classmethod
    def fit(cls, points: np.ndarray, mask: np.ndarray, layers: LayerStack, incident_energy: np.ndarray | None = None,
            log_point_energy: bool = False) -> ShowerStats:
        """Normalisations of the showers (N, P, 4) [mm or layer units, MeV]; with ``incident_energy``
        [MeV] spanning more than a factor 10 the flow's conditioning and features go logarithmic
        (module docstring); ``log_point_energy`` for voxel showers."""
        layers = layer_stack(layers)
        q = shower_quantities(points, mask, layers)
        real = points[mask]
        u, v = layers.plane_axes
        extra: dict[str, Any] = {}
        e_sum = q["e_sum"]
        if incident_energy is not None and incident_energy.min() > 0 and incident_energy.max() > 10 * incident_energy.min():
            extra = {"e_inc_log": True, "e_inc_lo": float(incident_energy.min()), "e_inc_hi": float(incident_energy.max())}
            e_sum = e_sum / incident_energy
        if log_point_energy:
            extra.update(point_e_log=True, point_e_lo=float(real[:, 3].min()), point_e_hi=float(real[:, 3].max()))

        def window(a: np.ndarray) -> tuple[float, float]:  # mean +- 2 std: the scaled points have std 0.5 = sigma_data
            return float(a.mean() - 2 * a.std()), float(a.mean() + 2 * a.std() + 1e-6)

        return cls(layers.n_layers, int(mask.sum(1).max()), float(q["n_points"].max()), float(e_sum.max()),
                   tuple(float(v) for v in np.nanmean(q["cog"], 0)), tuple(float(v) for v in np.nanstd(q["cog"], 0) + 1e-6),
                   float(np.quantile(real[:, 3], 0.99)), window(real[:, u]), window(real[:, v]), **extra)

    def point_energy_to_model(self, e_mev: np.ndarray) -> np.ndarray:
        """Point energies [MeV] -> the point model's energy coordinate."""
        if not self.point_e_log:
            return e_mev / self.point_e_scale
        lo, hi = np.log(self.point_e_lo), np.log(self.point_e_hi)
        return (np.log(np.maximum(e_mev, self.point_e_lo)) - lo) / (hi - lo) * 2 - 1

    def point_energy_from_model(self, x: np.ndarray) -> np.ndarray:
        """The inverse [MeV] (negative linear energies -> 0; log scale clipped to 1.5x its range)."""
        if not self.point_e_log:
            return np.clip(x, 0, None) * self.point_e_scale
        lo, hi = np.log(self.point_e_lo), np.log(self.point_e_hi)
        return np.exp(lo + (np.clip(x, -1.5, 1.5) + 1) / 2 * (hi - lo))

    def condition(self, e_inc_mev: np.ndarray) -> np.ndarray:
        """(N,) float32 incident energies [MeV] scaled to about [0, 1] (see the module docstring)."""
        e = np.asarray(e_inc_mev, np.float64)
        if self.e_inc_log:
            u = np.log(np.maximum(e, 1e-9) / self.e_inc_lo) / np.log(self.e_inc_hi / self.e_inc_lo)
        else:
            u = (e - self.e_inc_lo) / (self.e_inc_hi - self.e_inc_lo)
        return u.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShowerStats:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def by_rows(fn: Callable[..., Any], *arrays: np.ndarray, chunk: int = 2048) -> Any:
    """fn over chunks of showers (rows) of ``arrays``, joined (arrays, or dicts of arrays): row-wise
    work on 100k-shower sets without float64 temporaries of the whole set."""
    if len(arrays[0]) <= chunk:
        return fn(*arrays)
    parts = [fn(*(a[i:i + chunk] for a in arrays)) for i in range(0, len(arrays[0]), chunk)]
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def shower_quantities(points: np.ndarray, mask: np.ndarray, layers: LayerStack) -> dict[str, np.ndarray]:
    """Per shower (N,): ``n_points``, ``e_sum`` [MeV], ``cog`` (N, 3) [point units], ``points_per_layer``
    and ``energy_per_layer`` (N, L) (counts and MeV); points outside every layer count in no layer.
    ``layers``: a ``LayerStack`` or a geometry."""
    layers = layer_stack(layers)
    return by_rows(lambda p, m: _quantities(p, m, layers), points, mask)


def _quantities(points: np.ndarray, mask: np.ndarray, layers: LayerStack) -> dict[str, np.ndarray]:
    e = np.where(mask, points[..., 3], 0.0).astype(np.float64)
    e_sum = e.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cog = np.stack([(e * points[..., k]).sum(1) / e_sum for k in range(3)], -1)
    layer = layers.layer_of(points[..., layers.depth_axis]).reshape(mask.shape)
    ok = mask & (layer >= 0)
    rows = np.repeat(np.arange(len(mask)), mask.shape[1]).reshape(mask.shape)
    ppl = np.zeros((len(mask), layers.n_layers))
    epl = np.zeros((len(mask), layers.n_layers))
    np.add.at(ppl, (rows[ok], layer[ok]), 1.0)
    np.add.at(epl, (rows[ok], layer[ok]), e[ok])
    return {"n_points": mask.sum(1).astype(np.float64), "e_sum": e_sum, "cog": cog, "points_per_layer": ppl,
            "energy_per_layer": epl}


class ShowerFlow(nn.Module):
    """p(quantities | E_inc) with zuko's NSF (coupling transforms); features (N, 3 + 2 + 2 L)."""

    def __init__(self, stats: ShowerStats, transforms: int = 10, hidden: tuple[int, ...] = (128, 128), bins: int = 8):
        super().__init__()
        import zuko

        self.stats = stats
        self.n_features = 5 + 2 * stats.n_layers
        self.flow = zuko.flows.NSF(self.n_features, context=1, bins=bins, transforms=transforms, passes=2,
                                   hidden_features=hidden)

    def encode(self, q: dict[str, np.ndarray], e_inc_mev: np.ndarray) -> np.ndarray:
        """Quantities of showers at E_inc (N,) [MeV] -> normalised flow features (N, F)."""
        s = self.stats
        with np.errstate(invalid="ignore", divide="ignore"):
            fp = q["points_per_layer"] / np.maximum(q["points_per_layer"].sum(1, keepdims=True), 1)
            fe = q["energy_per_layer"] / np.maximum(q["energy_per_layer"].sum(1, keepdims=True), 1e-12)
        cog = (np.nan_to_num(q["cog"], nan=0.0) - np.asarray(s.cog_mean)) / np.asarray(s.cog_std)
        if s.e_inc_log:
            n = np.log(np.maximum(q["n_points"], 1)) / np.log(s.n_scale)
            e = q["e_sum"] / np.asarray(e_inc_mev, np.float64) / s.e_scale
        else:
            n, e = q["n_points"] / s.n_scale, q["e_sum"] / s.e_scale
        return np.column_stack([n, e, cog, fp, fe]).astype(np.float32)

    def decode(self, f: np.ndarray, e_inc_mev: np.ndarray) -> dict[str, np.ndarray]:
        """Flow features of showers at E_inc (N,) [MeV] -> quantities (clipped to physical values;
        fractions renormalised)."""
        s, L = self.stats, self.stats.n_layers
        if s.e_inc_log:
            n = np.exp(np.clip(f[:, 0], 0, 1.5) * np.log(s.n_scale))
            e_sum = np.clip(f[:, 1] * s.e_scale, 1e-3 * s.e_scale, None) * np.asarray(e_inc_mev, np.float64)
        else:
            n = f[:, 0] * s.n_scale
            e_sum = np.clip(f[:, 1] * s.e_scale, 1e-3 * s.e_scale, None)
        n = np.clip(np.rint(n), 1, s.max_points)
        cog = f[:, 2:5] * np.asarray(s.cog_std) + np.asarray(s.cog_mean)
        fp, fe = np.clip(f[:, 5:5 + L], 0, None), np.clip(f[:, 5 + L:5 + 2 * L], 0, None)
        fp = fp / np.maximum(fp.sum(1, keepdims=True), 1e-12)
        fe = fe / np.maximum(fe.sum(1, keepdims=True), 1e-12)
        return {"n_points": n, "e_sum": e_sum, "cog": cog, "point_fractions": fp, "energy_fractions": fe}

    def context(self, e_inc_mev: np.ndarray) -> torch.Tensor:
        """(N, 1) conditioning: ``ShowerStats.condition`` of E_inc [MeV]."""
        return torch.as_tensor(self.stats.condition(e_inc_mev)).view(-1, 1)

    def log_prob(self, features: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.flow(context).log_prob(features)

    @torch.no_grad()
    def sample(self, e_inc_mev: np.ndarray, generator_seed: int) -> dict[str, np.ndarray]:
        """Quantities of len(e_inc) showers (seeded through torch's global generator state)."""
        with torch.random.fork_rng():
            torch.manual_seed(generator_seed)
            f = self.flow(self.context(e_inc_mev)).sample()
        return self.decode(f.numpy().astype(np.float64), e_inc_mev)
