"""MDMA for calorimeter showers (Käch, Melzer-Pellmann, Krücker; the mean-field attention GAN of
arXiv:2305.15254, as submitted to the CaloChallenge data set 2: code ``kaechb/CaloChallenge`` at
b9ca552, ``models.py``, ``fit.py``, ``dataloader.py``): a WGAN-GP whose generator and critic
pass one mean-field token per shower through attention pooling, so the cost is linear in the
number of points; the generator also matches the critic's final token (feature matching) and the
energy response sum_i E_i / E_inc.

Points.  One point per voxel at or above the readout threshold (``training.as_point_showers``),
modelled as [E, z, alpha, r]: E [MeV] Box-Cox transformed and standardised; z, alpha, r as
dequantised bin indices (layer, angular and radial bin plus the point's fraction of its voxel:
U[0, 1) in layer and angle, in r^2 for the radius, as pcbench places the points), each min-max
scaled to (1e-5, 1 - 1e-5), logit transformed and standardised (the reference's scaler; its
frozen dequantisation noise is pcbench's uniform placement).  Generated points go back to the
voxel their indices name (indices clamped to the grid), at the fraction they say; the
projection (``pipeline.project_showers``) then sums the points of one voxel, as the reference's
sparse ``coalesce``.

Conditioning.  (log(E_inc / MeV) - 10, n / ``n_norm``) with n the shower's number of points
(the reference: the raw n, ``n_norm`` 1).  The number of points is not generated: the
submission took it from the evaluation file's real showers; ``sample`` gets only energies, so
it takes n of one of the ``N_NEIGHBOURS`` training showers nearest in incident energy.

Networks (``ShowerMFBlock``; a = LeakyReLU(0.01), "|" concatenation, count = n / 4000):

    h = a(W0 x);  t = a(LN(Wt (f | cond)));  t = MHA(t, h, h);  t = a(Wc (t | count));
    t = a(GLU(t | Wg logE));  x <- a(W1 (h | t) + x);  f <- t + f

The generator embeds N(0, 1) noise per point, starts the token at the mean over the points, and
ends with GLU(x | Wg' logE) and a row-normalised linear map; the critic has row-normalised linear
layers without bias (the jets' ``RowNormLinear``), starts the token from (sum_i x_i / 4000 |
cond), activates it after every block and scores it through a small head; its token before
the last activation is the mean field the generator matches.  Both use weight-normalised query,
key and value projections (the jets' ``_WeightNormLinear``).  Differences, by design: the
token's start and the count are over the shower's real points (the reference: the mean over the
padded batch and the number of padding entries, so a shower's output depended on its batch);
the critic's parameters that get no gradient in the reference (its ``cls_token``, 16,
and the last block's point update W1, 768) are left out; the dequantisation is
pcbench's uniform placement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats as sps
from torch import nn

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...errors import ConfigError
from ...geometry import CylindricalGeometry, get_geometry, layer_stack
from ..nets.schedules import cosine_warmup
from ..nets.mean_field import RowNormLinear, _WeightNormLinear
from ..trainer import Phase, TrainOptions
from .base import ShowerGenerator, ShowerRun
from .phases import RECORD_EVERY
from .pipeline import PipelineSteps, batch_seed, project_showers

__all__ = ["ShowerMFBlock", "ShowerMDMAGenerator", "ShowerMDMACritic", "MDMAShowers"]

#: the reference's normaliser of point sums and counts (``models.py``: ``/4000``)
SUM_NORM = 4000.0
#: sampling takes the number of points of one of this many training showers nearest in E_inc
N_NEIGHBOURS = 10


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.01)


class ShowerMFBlock(nn.Module):
    """One block of the submission (module docstring) on padded showers.

    Args: dim (token and point width E), hidden (H), heads, critic (row-normalised linear layers
    without bias, else ``nn.Linear``), dropout (of the attention weights), update_points (False:
    the critic's last block, whose point update the reference computes but never uses, so W1
    would get no gradient; x is returned as it came).
    Shapes: x (B, N, E), token (B, 1, E), cond (B, 1, 2), count (B, 1, 1), mask (B, N) True = point.
    """

    def __init__(self, dim: int, hidden: int, heads: int, critic: bool = False, dropout: float = 0.0,
                 update_points: bool = True):
        super().__init__()
        if hidden % heads:
            raise ConfigError(f"hidden {hidden} is not a multiple of heads {heads}")
        linear = RowNormLinear if critic else nn.Linear
        self.heads, self.dropout = heads, dropout
        self.fc0, self.fc0_cls = linear(dim, hidden), linear(dim + 2, hidden)
        self.fc1 = linear(hidden + dim, dim) if update_points else None
        self.fc1_cls = linear(hidden + 1, dim)
        self.cond_cls = nn.Linear(1, dim)
        self.ln = nn.LayerNorm(hidden)
        self.q, self.k, self.v = (_WeightNormLinear(hidden, hidden) for _ in range(3))
        self.o = nn.Linear(hidden, hidden)

    def attend(self, query: torch.Tensor, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, 1, H): the token's multi-head attention over the shower's points (padding masked)."""
        b, n, d = h.shape
        hd = d // self.heads
        q = self.q(query).view(b, 1, self.heads, hd).transpose(1, 2)
        k, v = (f(h).view(b, n, self.heads, hd).transpose(1, 2) for f in (self.k, self.v))
        # by hand, not scaled_dot_product_attention: the gradient penalty differentiates twice
        w = (q @ k.transpose(-1, -2) / hd ** 0.5).masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1)
        w = F.dropout(w, self.dropout, self.training)
        return self.o((w @ v).transpose(1, 2).reshape(b, 1, d))

    def forward(self, x, token, cond, count, mask) -> tuple[torch.Tensor, torch.Tensor]:
        h = _act(self.fc0(x))
        t = _act(self.ln(self.fc0_cls(torch.cat([token, cond], -1))))
        t = self.attend(t, h, mask)
        t = _act(self.fc1_cls(torch.cat([t, count], -1)))
        t = _act(F.glu(torch.cat([t, self.cond_cls(cond[..., :1])], -1)))
        if self.fc1 is not None:
            x = _act(self.fc1(torch.cat([h, t.expand(-1, x.shape[1], -1)], -1)) + x)
        return x, t + token


def _count(mask: torch.Tensor) -> torch.Tensor:
    return mask.sum(1, dtype=torch.float32).view(-1, 1, 1) / SUM_NORM


class ShowerMDMAGenerator(nn.Module):
    """Noise z (B, N, 4), mask (B, N), cond (B, 2) -> points (B, N, 4) in model space (padding 0).
    The submission: dim 16, hidden 48, heads 8 or 16, 5 layers: 66,416 parameters."""

    def __init__(self, dim: int, hidden: int, heads: int, layers: int, features: int = 4):
        super().__init__()
        self.embed = nn.Linear(features, dim)
        self.blocks = nn.ModuleList(ShowerMFBlock(dim, hidden, heads) for _ in range(layers))
        self.cond = nn.Linear(1, dim)
        self.out = RowNormLinear(dim, features)

    def forward(self, z: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        m = mask[..., None].to(z.dtype)
        cond, count = cond[:, None, :], _count(mask)
        x = _act(self.embed(z))
        token = (x * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1)
        for block in self.blocks:
            x, token = block(x, token, cond, count, mask)
        x = F.glu(torch.cat([x, self.cond(cond[..., :1]).expand(-1, x.shape[1], -1)], -1))
        return self.out(x) * m


class ShowerMDMACritic(nn.Module):
    """Points (B, N, 4), mask, cond (B, 2) -> scores (B,) and the mean field (B, E).
    The submission: dim 16, hidden 32, heads 8 or 16, 6 layers: 41,456 parameters (the
    reference's 42,240 less its unused ``cls_token``, 16, and the last block's unused W1, 768)."""

    def __init__(self, dim: int, hidden: int, heads: int, layers: int, dropout: float = 0.0, features: int = 4):
        super().__init__()
        self.embed, self.embed_token = RowNormLinear(features, dim), RowNormLinear(dim + 2, dim)
        self.blocks = nn.ModuleList(ShowerMFBlock(dim, hidden, heads, critic=True, dropout=dropout,
                                                  update_points=i < layers - 1) for i in range(layers))
        self.fc1, self.fc2, self.out = RowNormLinear(dim, hidden), RowNormLinear(hidden, dim), RowNormLinear(dim, 1)
        self.ln = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond, count = cond[:, None, :], _count(mask)
        x = _act(self.embed(x)) * mask[..., None].to(x.dtype)
        token = _act(self.embed_token(torch.cat([x.sum(1, keepdim=True) / SUM_NORM, cond], -1)))
        field = token
        for block in self.blocks:
            x, field = block(x, token, cond, count, mask)
            token = _act(field)
        score = self.out(_act(self.ln(self.fc2(_act(self.fc1(token))))))
        return score[:, 0, 0], field[:, 0]


def _uniform_binning(geometry: CylindricalGeometry) -> tuple[np.ndarray, np.ndarray, int]:
    """Layer ids, radial edges [mm] and alpha bins shared by every layer with voxels."""
    binning = geometry.common_binning
    if binning is None:
        raise ConfigError(f"mdma-showers needs the same (alpha, r) bins in every layer; {geometry.name} has not "
                          "(use calochallenge-2 or calochallenge-3)")
    return np.array(geometry.relevant_layers), np.asarray(binning.r_edges, np.float64), binning.n_alpha


class MDMAShowers(ShowerGenerator):
    """MDMA's GAN for CaloChallenge showers; ``full``: the submitted ds2 model (66,416 generator
    parameters), ``small``: about 9 CPU-minutes on one thread (docs/generators-showers.md)."""

    name = "mdma-showers"
    configs: dict[str, dict[str, Any]] = {
        "full": {"gen_dim": 16, "gen_hidden": 48, "gen_heads": 16, "gen_layers": 5, "disc_dim": 16,
                 "disc_hidden": 32, "disc_heads": 8, "disc_layers": 6, "dropout": 0.2, "lr": 5e-5,
                 "weight_decay": 0.01, "warmup": 200, "max_iters": 1_000_000, "steps": 1_000_000,
                 "batch_size": 64, "gp_weight": 10.0, "mf_weight": 1.0, "mf_steps": 500_000,
                 "e_loss_weight": 0.1, "n_norm": 1.0, "grid": "calochallenge-2"},
        "small": {"gen_dim": 16, "gen_hidden": 32, "gen_heads": 4, "gen_layers": 3, "disc_dim": 16,
                  "disc_hidden": 32, "disc_heads": 4, "disc_layers": 2, "dropout": 0.0, "lr": 2e-4,
                  "weight_decay": 0.01, "warmup": 100, "max_iters": 2500, "steps": 2500,
                  "batch_size": 8, "gp_weight": 10.0, "mf_weight": 1.0, "mf_steps": 500_000,
                  "e_loss_weight": 0.1, "n_norm": 1000.0, "grid": "calochallenge-2"},
    }

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        c = self.config = dict(config)
        geometry = get_geometry(c["grid"])
        if not isinstance(geometry, CylindricalGeometry):
            raise ConfigError(f"mdma-showers generates CaloChallenge voxel showers; grid {c['grid']!r} is not one "
                              "(train it on calochallenge-2 or -3 voxels)")
        ids, self._r_edges, self._n_alpha = _uniform_binning(geometry)
        self._ids = ids
        self.gen = ShowerMDMAGenerator(c["gen_dim"], c["gen_hidden"], c["gen_heads"], c["gen_layers"])
        self.disc = ShowerMDMACritic(c["disc_dim"], c["disc_hidden"], c["disc_heads"], c["disc_layers"], c["dropout"])
        # the scaler (fitted by ``fit_scaler``): Box-Cox lambda, mean, std of E; per index column
        # (z, alpha, r) min, max, mean and std of the logit; the floor of the scaled energy
        self.register_buffer("e_scale", torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64))
        self.register_buffer("idx_scale", torch.tensor([[0.0, 1.0, 0.0, 1.0]] * 3, dtype=torch.float64))
        self.register_buffer("min_e", torch.zeros((), dtype=torch.float64))
        self.register_buffer("n_table", torch.zeros(0, 2, dtype=torch.float64))  # training (log E_inc, n), by E

    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> MDMAShowers:
        model = cls(config)
        model.fit_scaler(data)
        return model

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> MDMAShowers:
        return cls(payload["config"])

    # --- points <-> model space ----------------------------------------------------------------
    def indices(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) dequantised bin indices (layer, alpha, r) of points (..., 4) (x, y [mm], z)."""
        p = np.asarray(points, np.float64)
        layer = layer_stack(self.grid).layer_of(p[..., 2]).reshape(p.shape[:-1])
        z = np.maximum(layer, 0) + (p[..., 2] - np.floor(p[..., 2]))
        a = (np.arctan2(p[..., 1], p[..., 0]) + np.pi) / (2 * np.pi) * self._n_alpha
        a = np.where(a >= self._n_alpha, a - self._n_alpha, a)
        e = self._r_edges
        r2 = p[..., 0] ** 2 + p[..., 1] ** 2
        rb = np.clip(np.searchsorted(e, np.sqrt(r2), side="right") - 1, 0, len(e) - 2)
        r = rb + np.clip((r2 - e[rb] ** 2) / (e[rb + 1] ** 2 - e[rb] ** 2), 0, 1 - 1e-9)
        return np.stack([z, a, r], -1)

    def points_of(self, idx: np.ndarray) -> np.ndarray:
        """(..., 3) points (x, y [mm], z = layer id + fraction) inside the voxels the dequantised
        indices (..., 3) name (each clamped to the grid; fraction kept off the voxel's faces)."""
        sizes = (len(self._ids), self._n_alpha, len(self._r_edges) - 1)
        k = [np.clip(np.floor(idx[..., j]), 0, sizes[j] - 1).astype(np.int64) for j in range(3)]
        f = [np.clip(idx[..., j] - k[j], 1e-3, 1 - 1e-3) for j in range(3)]
        e = self._r_edges
        r = np.sqrt(e[k[2]] ** 2 + f[2] * (e[k[2] + 1] ** 2 - e[k[2]] ** 2))
        alpha = -np.pi + (k[1] + f[1]) * 2 * np.pi / self._n_alpha
        return np.stack([r * np.cos(alpha), r * np.sin(alpha), self._ids[k[0]] + f[0]], -1)

    def fit_scaler(self, data: ShowerPointSet) -> None:
        """Fit the reference's scaler on the training points and keep the (E_inc, n) table."""
        pts = data.points[data.mask].astype(np.float64)
        if len(pts) == 0:
            raise ConfigError("mdma-showers: the training showers hold no points")
        energy = np.maximum(pts[:, 3], 1e-12)
        lam = float(sps.boxcox_normmax(energy, method="mle"))
        y = self._boxcox(energy, lam)
        self.e_scale = torch.tensor([lam, y.mean(), y.std() or 1.0], dtype=torch.float64)
        idx = self.indices(pts)
        lo, hi = idx.min(0), idx.max(0)
        u = self._logit((idx - lo) / np.where(hi > lo, hi - lo, 1.0))
        self.idx_scale = torch.as_tensor(np.column_stack([lo, hi, u.mean(0), np.where(u.std(0) > 0, u.std(0), 1.0)]))
        self.min_e = torch.tensor(((y - y.mean()) / float(self.e_scale[2])).min(), dtype=torch.float64)
        n = data.mask.sum(1)
        table = np.column_stack([np.log(data.incident_energy.astype(np.float64)), n])[n > 0]
        self.n_table = torch.as_tensor(table[np.argsort(table[:, 0], kind="stable")])

    @staticmethod
    def _boxcox(e: np.ndarray, lam: float) -> np.ndarray:
        return np.log(e) if lam == 0 else (e ** lam - 1) / lam

    @staticmethod
    def _logit(u: np.ndarray) -> np.ndarray:
        u = u * (1 - 2e-5) + 1e-5
        return np.log(u) - np.log1p(-u)

    def to_model(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, P, 4) points (point convention, MeV) -> (N, P, 4) float32 [E, z, alpha, r] scaled; padding 0."""
        lam, mu, sd = self.e_scale.tolist()
        s = self.idx_scale.numpy()
        out = np.zeros(mask.shape + (4,), np.float32)
        p = points[mask].astype(np.float64)
        u = (self.indices(p) - s[:, 0]) / np.where(s[:, 1] > s[:, 0], s[:, 1] - s[:, 0], 1.0)
        e = (self._boxcox(np.maximum(p[:, 3], 1e-12), lam) - mu) / sd
        out[mask] = np.column_stack([e, (self._logit(u) - s[:, 2]) / s[:, 3]])
        return out

    def energy_mev(self, e: torch.Tensor) -> torch.Tensor:
        """The inverse Box-Cox of scaled energies (any shape, differentiable) [MeV]."""
        lam, mu, sd = self.e_scale.tolist()
        y = e.double() * sd + mu
        out = torch.exp(y) if lam == 0 else (lam * y + 1).clamp_min(1e-12) ** (1 / lam)
        return out.to(e.dtype)

    def from_model(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, P, 4) model-space points -> points (x, y [mm], z = layer id, E [MeV]); padding 0."""
        s = self.idx_scale.numpy()
        x = x.astype(np.float64)
        u = 1 / (1 + np.exp(-(x[..., 1:] * s[:, 3] + s[:, 2])))
        idx = (np.clip(u, 1e-5, 1 - 1e-5) - 1e-5) / (1 - 2e-5) * (s[:, 1] - s[:, 0]) + s[:, 0]
        energy = self.energy_mev(torch.as_tensor(np.maximum(x[..., 0], float(self.min_e)))).numpy()
        out = np.concatenate([self.points_of(idx), energy[..., None]], -1)
        return np.where(mask[..., None], out, 0.0)

    def condition(self, e_inc_mev: np.ndarray, n: np.ndarray) -> torch.Tensor:
        """(B, 2) conditioning: log(E_inc / MeV) - 10 and n / ``n_norm``."""
        c = np.column_stack([np.log(np.asarray(e_inc_mev, np.float64)) - 10, np.asarray(n, np.float64) / self.config["n_norm"]])
        return torch.as_tensor(c, dtype=torch.float32)

    # --- training ------------------------------------------------------------------------------
    def initial_state(self) -> dict[str, Any]:
        return {"step": 0, "history": []}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The reference's: AdamW (weight decay 0.01) for the critic, Adam for the generator, both
        betas (0, 0.999), eps 1e-14."""
        c = self.config
        return {"gen": torch.optim.Adam(self.gen.parameters(), lr=c["lr"], betas=(0.0, 0.999), eps=1e-14),
                "disc": torch.optim.AdamW(self.disc.parameters(), lr=c["lr"], betas=(0.0, 0.999), eps=1e-14,
                                          weight_decay=c["weight_decay"])}

    def trained_parts(self) -> list[tuple[nn.Module, str]]:
        return [(self, "gen"), (self, "disc")]

    def untrained(self, state: dict[str, Any]) -> list[str]:
        return [] if state["step"] >= self.config["steps"] else [f"GAN ({state['step']} of {self.config['steps']} steps)"]

    def fake(self, mask: torch.Tensor, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Generated points in model space for the showers of ``mask``; E floored at the training minimum."""
        z = torch.randn(mask.shape + (4,), generator=generator, device=mask.device) * mask[..., None]
        x = self.gen(z, mask, cond)
        e = F.relu(x[..., :1] - float(self.min_e)) + float(self.min_e)
        return torch.cat([e, x[..., 1:]], -1) * mask[..., None]

    def gan_losses(self, real: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor, e_inc: torch.Tensor,
                   generator: torch.Generator, optimizers: dict[str, torch.optim.Optimizer] | None = None,
                   mf_on: bool = True) -> dict[str, float]:
        """One critic step and one generator step: each updates the network whose optimizer
        ``optimizers`` holds ("disc", "gen"; None: the losses only, no update).

        Critic: -D(real) + D(fake) + gp_weight (|grad D(interpolate)| - 1)^2 (one call on the
        three); generator: -D(fake') + mf_weight MSE(field(fake'), field(real)) + e_loss_weight
        MSE(response(real), response(fake')), field(real) from the critic's step (as the reference).
        """
        c, b = self.config, len(real)
        with torch.no_grad():
            fake = self.fake(mask, cond, generator)
        alpha = torch.rand(b, 1, 1, generator=generator, device=real.device)
        inter = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        m3, c3 = mask.repeat(3, 1), cond.repeat(3, 1)
        score, field = self.disc(torch.cat([real, fake, inter]), m3, c3)
        grad, = torch.autograd.grad(score[2 * b:].sum(), inter, create_graph=True)
        gp = c["gp_weight"] * ((torch.sqrt(grad.pow(2).sum((1, 2)) + 1e-12) - 1) ** 2).mean()
        wasserstein = -score[:b].mean() + score[b:2 * b].mean()
        d_loss = wasserstein + gp
        field_real = field[:b].detach()
        optimizers = optimizers or {}
        if "disc" in optimizers:
            optimizers["disc"].zero_grad()
            d_loss.backward()
            optimizers["disc"].step()
        fake = self.fake(mask, cond, generator)
        score_g, field_g = self.disc(fake, mask, cond)
        adv = -score_g.mean()
        mf = F.mse_loss(field_g, field_real)
        response = [(self.energy_mev(x[..., 0]) * mask).sum(1) / e_inc for x in (real, fake)]
        e_loss = F.mse_loss(response[1], response[0])
        g_loss = adv + (c["mf_weight"] * mf if mf_on else 0.0) + c["e_loss_weight"] * e_loss
        if "gen" in optimizers:
            optimizers["gen"].zero_grad()
            g_loss.backward()
            optimizers["gen"].step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "wasserstein": wasserstein.item(), "gp": gp.item(), "g_adv": adv.item(),
                "mean_field": mf.item(), "e_loss": e_loss.item()}

    def batches(self, data: ShowerPointSet, batch_size: int) -> list[np.ndarray]:
        """The reference's bucket batches: showers sorted by number of points, cut into batches."""
        n = data.mask.sum(1)
        order = np.argsort(n, kind="stable")
        order = order[n[order] > 0]
        return [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)] or [order]

    def phases(self, run: ShowerRun) -> list[Phase]:
        c, state, data, world, rank = self.config, run.state, run.data, run.world, run.rank
        x_all = self.to_model(data.points, data.mask)
        n_all = data.mask.sum(1)
        buckets = self.batches(data, c["batch_size"])
        per_rank = len(buckets) // world
        if per_rank == 0:
            raise ConfigError(f"mdma-showers: {len(buckets)} batches of {c['batch_size']} showers for {world} ranks")
        gen = torch.Generator(device=run.device)
        window: list[dict[str, float]] = []

        def step() -> str | None:
            s = state["step"]
            epoch, i = divmod(s, per_rank)
            order = np.random.default_rng([run.opts.seed, 7, epoch]).permutation(len(buckets))[:per_rank * world]
            rows = np.sort(buckets[order[rank::world][i]])
            width = int(n_all[rows].max())
            real = torch.as_tensor(x_all[rows, :width]).to(run.device)
            mask = torch.as_tensor(data.mask[rows, :width]).to(run.device)
            cond = self.condition(data.incident_energy[rows], n_all[rows]).to(run.device)
            e_inc = torch.as_tensor(data.incident_energy[rows], dtype=torch.float32).to(run.device)
            factor = cosine_warmup(min(s, int(0.99 * c["max_iters"])), c["warmup"], c["max_iters"])
            for opt in run.optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = c["lr"] * factor
            gen.manual_seed(run.opts.seed * 1_000_003 + s * world + rank)
            window.append(self.gan_losses(real, mask, cond, e_inc, gen, run.optimizers, s < c["mf_steps"]))
            state["step"] = s + 1
            if state["step"] % RECORD_EVERY and state["step"] != c["steps"]:
                return None
            mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            state["history"].append({"phase": "gan", "step": state["step"], **mean})
            window.clear()
            return f"D {mean['d_loss']:.3g} G {mean['g_adv']:.3g} mf {mean['mean_field']:.3g}"

        every = 500 if run.opts.checkpoint_every is None else run.opts.checkpoint_every
        return [Phase("GAN", c["steps"], "steps", lambda: state["step"], step, every)]

    # --- sampling ------------------------------------------------------------------------------
    def n_points(self, e_inc_mev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Points per shower: that of one of the ``N_NEIGHBOURS`` training showers nearest in E_inc."""
        table = self.n_table.numpy()
        k = min(N_NEIGHBOURS, len(table))
        pos = np.searchsorted(table[:, 0], np.log(np.asarray(e_inc_mev, np.float64)))
        lo = np.clip(pos - k // 2, 0, len(table) - k)
        return table[lo + rng.integers(0, k, len(lo)), 1].astype(np.int64)

    @torch.no_grad()
    def sample(self, e_inc_mev: np.ndarray, seed: int = 0, batch_size: int = 64,
               steps: PipelineSteps = PipelineSteps(),
               progress: Callable[[int], None] | None = None) -> ShowerPointSet | VoxelShowerSet:
        """Showers at the given incident energies [MeV]: points (x, y [mm], z = layer id, E [MeV]),
        or with ``steps.project`` voxels (only ``project`` of ``steps`` applies)."""
        e = np.asarray(e_inc_mev, np.float64)
        if len(self.n_table) == 0:
            raise ConfigError("mdma-showers: the model was not fitted to training showers")
        n = self.n_points(e, np.random.default_rng(seed))
        width = int(n.max(initial=1))
        pts = np.zeros((len(e), width, 4), np.float32)
        mask = np.arange(width)[None, :] < n[:, None]
        device = self.device
        for i, a in enumerate(range(0, len(e), batch_size)):
            rows = slice(a, a + batch_size)
            w = int(n[rows].max())
            m = torch.as_tensor(mask[rows, :w]).to(device)
            gen = torch.Generator(device=device).manual_seed(batch_seed(seed, i))
            x = self.fake(m, self.condition(e[rows], n[rows]).to(device), gen).cpu().numpy()
            pts[rows, :w] = self.from_model(x, mask[rows, :w])
            if progress is not None:
                progress(len(x))
        out = ShowerPointSet(pts, mask & (pts[..., 3] > 0), e.astype(np.float32), {"y_unit": "mm"})
        return project_showers(out, self.grid) if steps.project else out
