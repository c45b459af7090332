"""Convolutional L2LFlows (Buss et al., arXiv:2405.20407; the MAF
version: L2LFlows, arXiv:2302.11594; code ``FLC-QU-hep/ConvL2LFlow`` @ f7f92a5): a voxel model,

    p(shower | E_inc) = p(E_1 .. E_L | E_inc) prod_l p(image_l | images_{l-k..l-1}, E_l, E_inc),

a masked autoregressive spline flow for the L layer energies, and convolutional coupling flows
(``conv_flow.ConvFlow``) for the layer images, each conditioned on the k = ``cond_layers``
previous layers (in the flows' preprocessed space), its layer energy and E_inc as constant maps.
The ``full`` config has one flow per layer, trained one after the other, as the code; the
``small`` config one flow shared by all layers with the layer index as an extra condition map
(a pcbench deviation, ``shared_flow``; layers before the first are filled with an empty layer).

Units inside the model follow the code: GeV.  Layer images: (N, L, H, W) with the angular axis
last on CaloChallenge geometries (H = r, W = alpha, cyclic: circular padding and a random roll
of alpha per batch), (N, L, u, v) cells on a layered grid.  Preprocessing of a voxel energy v
(``causal.yaml:13-24``): x = clip(v / (max_l + 1e-6), 0, 1), y = log10(x + 1e-7) / 7 + 1,
logit(0.01 + 0.98 y); the conditions log10(E_l + 1e-6) + 1 and 2 log10(E_inc + 1e-6) - 3.
Training dequantises: U(0, 1e-6) GeV on every voxel, and 10^N(-6, 0.2) GeV on empty voxels (both
clipped to the threshold).  Layer energies for the energy flow (``energy.yaml``): the thresholded
sums + N(1e-6, 2e-7), divided by the largest training layer energy, clipped to [0, 1], logit with
alpha = 1e-6.  Generated voxels below the geometry's readout threshold are zeroed; ``renormalize``
(the code's ILD post-processing) rescales each layer to its sampled energy above the threshold.

Training showers come as points (CaloChallenge: one point per voxel); ``layer_images`` turns any
point showers into the (N, L, H, W) voxel images of a geometry by the projection.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...errors import ConfigError
from ...geometry import CylindricalGeometry, layer_stack
from ..trainer import Phase, TrainOptions
from .base import ShowerGenerator, ShowerRun
from .conv_flow import ConvFlow
from .pipeline import PipelineSteps, batch_seed
from .voxels import cells_to_showers, image_shape, images_to_cells, layer_images

__all__ = ["ConvL2LFlow", "renormalize_layers", "one_cycle"]

#: per geometry: squeeze factor of the layer images and the U-Net's down-sampling kernels (ds3 and
#: ILD: the code's ``causal.yaml`` / ``causal_gh.yaml``; ds2, r = 9 odd: squeeze alpha only, the
#: reading notes' adaptation; the code ships no data-set-2 config)
LAYOUTS: dict[str, tuple[tuple[int, int], list[tuple[int, int]]]] = {
    "calochallenge-2": ((1, 2), [(3, 2), (3, 4)]),
    "calochallenge-3": ((2, 2), [(3, 5), (3, 5)]),
    "ild-ecal-30": ((2, 2), [(3, 3), (5, 5)]),
}

_VOXEL_EPS, _LOG_EPS, _LOGIT_IMG, _LOGIT_E = 1e-6, 1e-7, 1e-2, 1e-6


# --- transforms -----------------------------------------------------------------------------------
def _logit(x: torch.Tensor, alpha: float) -> torch.Tensor:
    x = (1 - 2 * alpha) * x + alpha
    return torch.log(x / (1 - x))


def _expit(y: torch.Tensor, alpha: float) -> torch.Tensor:
    return (torch.sigmoid(y) - alpha) / (1 - 2 * alpha)


def _cond_einc(e_gev: torch.Tensor) -> torch.Tensor:
    return 2 * torch.log10(e_gev + 1e-6) - 3


def _cond_layer(e_gev: torch.Tensor) -> torch.Tensor:
    return torch.log10(e_gev.clamp_min(0) + 1e-6) + 1


#: an empty voxel in the flows' space (fills the layers before the first in the shared flow)
EMPTY = math.log(_LOGIT_IMG / (1 - _LOGIT_IMG))


def one_cycle(step: int, total: int, max_lr: float, pct: float = 0.3, div: float = 25.0,
              final_div: float = 1e4) -> tuple[float, float]:
    """(lr, beta1) of torch's ``OneCycleLR`` (cosine, momentum cycled 0.95 -> 0.85 -> 0.95) at
    ``step`` of ``total``, as a function of the step (a resumed run continues it)."""
    up = float(pct * total) - 1
    lo, end = max_lr / div, max_lr / div / final_div

    def cos(a: float, b: float, t: float) -> float:
        return b + (a - b) / 2 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))

    if step <= up:
        t = step / up if up > 0 else 1.0
        return cos(lo, max_lr, t), cos(0.95, 0.85, t)
    t = (step - up) / max(total - 1 - up, 1e-9)
    return cos(max_lr, end, t), cos(0.85, 0.95, t)


def renormalize_layers(v: torch.Tensor, e_layer: torch.Tensor, threshold: float) -> torch.Tensor:
    """The code's ILD post-processing (``generator.py:157-257``): per shower and layer, keep the m
    largest voxels, m the most for which the smallest kept one is still >= ``threshold`` once they
    are scaled to sum to ``e_layer``, and scale them so.  v (B, L, H, W), e_layer (B, L) [GeV]."""
    b, n, h, w = v.shape
    flat = v.reshape(b, n, h * w)
    s, order = flat.sort(-1, descending=True)
    c = s.cumsum(-1)
    ok = s * e_layer[..., None] >= threshold * c.clamp_min(1e-30)
    m = ok.sum(-1, keepdim=True)
    scale = e_layer[..., None] / c.gather(-1, (m - 1).clamp_min(0)).clamp_min(1e-30)
    kept = torch.where(torch.arange(h * w, device=v.device) < m, s * scale, torch.zeros_like(s))
    return torch.zeros_like(flat).scatter(-1, order, kept).reshape(b, n, h, w)


class ConvL2LFlow(ShowerGenerator):
    """The generator (module docstring); configs: ``full`` (the code's data-set-3 settings on the
    data-set-2 images) and ``small`` (CPU, minutes).  Training phases: the layer-energy flow's
    epochs, then the layer flows' epochs (per-layer flows: layer after layer)."""

    name = "conv-l2lflow"
    configs: dict[str, dict[str, Any]] = {
        "full": {"shared_flow": False, "blocks": 8, "hidden": 32, "embed": 8, "cond_layers": 5, "bins": 10,
                 "tail_bound": 15.0, "layer_epochs": 800, "batch_size": 1024, "lr": 6e-4, "grad_clip": 100.0,
                 "weight_decay": 0.0, "energy_blocks": 6, "energy_hidden": [64, 64], "energy_bins": 8,
                 "energy_epochs": 2000, "energy_batch_size": 1024, "energy_lr": 1e-3, "renormalize": False,
                 "grid": "calochallenge-2"},
        "small": {"shared_flow": True, "blocks": 4, "hidden": 8, "embed": 4, "cond_layers": 2, "bins": 10,
                  "tail_bound": 15.0, "layer_epochs": 10, "batch_size": 256, "lr": 2e-3, "grad_clip": 100.0,
                  "weight_decay": 0.0, "energy_blocks": 4, "energy_hidden": [64, 64], "energy_bins": 8,
                  # 300 energy epochs left the validation NLL 9 nats short of 1,000's; the small shared
                  # layer flow does not reproduce its E_l, so each layer is rescaled to it (the code's ILD
                  # post-processing): docs/generators-showers.md
                  "energy_epochs": 1000, "energy_batch_size": 256, "energy_lr": 1e-3, "renormalize": True,
                  "grid": "calochallenge-2"},
    }

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        import zuko
        from zuko.transforms import MonotonicRQSTransform

        self.config = c = dict(config)
        if c["grid"] not in LAYOUTS:
            raise ConfigError(f"conv-l2lflow: grid {c['grid']!r} has no image layout; known: {', '.join(LAYOUTS)}")
        g = self.grid
        self.n_layers, a, b = image_shape(g)
        self.cyclic = isinstance(g, CylindricalGeometry)
        self.hw = (b, a) if self.cyclic else (a, b)  # CaloChallenge: (r, alpha), the angle last
        self.factor, self.downsamples = LAYOUTS[c["grid"]]
        self.threshold = layer_stack(g).threshold / 1e3  # GeV
        if c["energy_bins"] < 2 or c["bins"] < 2 or c["blocks"] < 1 or c["cond_layers"] < 0:
            raise ConfigError("conv-l2lflow: bins and energy_bins must be >= 2, blocks >= 1, cond_layers >= 0")
        self.energy_flow = zuko.flows.MAF(
            self.n_layers, 1, transforms=c["energy_blocks"], randperm=True, hidden_features=tuple(c["energy_hidden"]),
            univariate=partial(MonotonicRQSTransform, bound=-math.log(_LOGIT_E), slope=1e-3),
            shapes=[(c["energy_bins"],), (c["energy_bins"],), (c["energy_bins"] - 1,)])
        k = c["cond_layers"]
        make = partial(ConvFlow, self.hw, factor=self.factor, blocks=c["blocks"], hidden=c["hidden"],
                       downsamples=self.downsamples, cyclic=self.cyclic, bins=c["bins"], bound=c["tail_bound"])
        if c["shared_flow"]:
            self.flows = nn.ModuleList([make(k + 3, embed=c["embed"])])
        else:
            self.flows = nn.ModuleList([make(min(k, l) + 2, embed=c["embed"] if l else 0) for l in range(self.n_layers)])
        self.register_buffer("layer_max", torch.ones(self.n_layers))  # GeV, the largest training voxel per layer
        self.register_buffer("e_max", torch.ones(()))                 # GeV, the largest training layer energy

    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> ConvL2LFlow:
        model = cls(config)
        imgs = model.images(data)
        model.layer_max.copy_(imgs.amax((0, 2, 3)))
        model.e_max.copy_(model.layer_energies(imgs).max().clamp_min(1e-6))
        model.initialize(imgs, data.incident_energy, opts.seed)
        return model

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ConvL2LFlow:
        return cls(payload["config"])

    # --- data ------------------------------------------------------------------------------------
    def images(self, data: ShowerPointSet) -> torch.Tensor:
        """Training showers -> (N, L, H, W) float32 layer images [GeV] in the model's orientation."""
        imgs = torch.as_tensor(layer_images(data.points, data.mask, self.grid)) / 1e3
        return imgs.transpose(2, 3).contiguous() if self.cyclic else imgs

    def layer_energies(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, L) layer sums of the voxels at or above the threshold [GeV]."""
        return torch.where(imgs >= self.threshold, imgs, 0).sum((-2, -1))

    def to_flow(self, v: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
        """Voxel energies (B, k, H, W) [GeV] of layers ``layer`` (B, k) -> the flows' space."""
        x = (v / (self.layer_max[layer] + _VOXEL_EPS)[..., None, None]).clamp(0, 1)
        return _logit(torch.log10(x + _LOG_EPS) / 7 + 1, _LOGIT_IMG)

    def from_flow(self, y: torch.Tensor, layer: int) -> torch.Tensor:
        x = (_expit(y, _LOGIT_IMG) - 1) * 7
        return (10 ** x - _LOG_EPS).clamp_min(0) * (self.layer_max[layer] + _VOXEL_EPS)

    def energy_features(self, e_layer: torch.Tensor) -> torch.Tensor:
        return _logit((e_layer / self.e_max).clamp(0, 1), _LOGIT_E)

    def context(self, prev: torch.Tensor, e_layer: torch.Tensor, e_inc_gev: torch.Tensor,
                layer: torch.Tensor | None) -> torch.Tensor:
        """Condition maps (B, k + 2 [+ 1], H, W): previous layers (flows' space), E_l, E_inc [and l / L]."""
        b = len(e_inc_gev)
        maps = [_cond_layer(e_layer), _cond_einc(e_inc_gev)] + ([] if layer is None else [layer / self.n_layers])
        const = torch.stack(maps, 1)[..., None, None].expand(b, len(maps), *self.hw)
        return torch.cat([prev, const.to(prev.dtype)], 1)

    def batch(self, imgs: torch.Tensor, e_inc_gev: torch.Tensor, rows: torch.Tensor, layers: torch.Tensor,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
        """A dequantised training batch of showers ``rows`` (B,), layers ``layers`` (B,) (all one
        layer unless the flow is shared): target images (B, 1, H, W) in the flows' space, their
        condition maps, and the index of the flow that models them."""
        c, k, dev = self.config, self.config["cond_layers"], imgs.device
        n_prev = k if c["shared_flow"] else min(k, int(layers[0]))
        which = layers[:, None] - torch.arange(n_prev, -1, -1, device=dev)  # (B, n_prev + 1), the target last
        v = imgs[rows[:, None], which.clamp_min(0)]
        if self.cyclic:
            v = v.roll(int(torch.randint(0, self.hw[1], (1,), generator=gen)), -1)
        extra = (10 ** (-6 + 0.2 * torch.randn(v.shape, generator=gen))).clamp(0, self.threshold).to(dev)
        uniform = (torch.rand(v.shape, generator=gen) * 2 * 5e-7).clamp(0, self.threshold).to(dev)
        seen = v[:, -1] + uniform[:, -1]  # E_l: the uniform-noised layer, cut at the threshold (data.py:169-180)
        e_layer = torch.where(seen >= self.threshold, seen, 0).sum((-2, -1))
        v = torch.where(v < 1e-8, v + extra, v) + uniform
        y = self.to_flow(v, which.clamp_min(0))
        y = torch.where((which >= 0)[..., None, None], y, torch.full_like(y, EMPTY))
        ctx = self.context(y[:, :-1], e_layer, e_inc_gev[rows], layers.float() if c["shared_flow"] else None)
        return y[:, -1:], ctx, 0 if c["shared_flow"] else int(layers[0])

    def initialize(self, imgs: torch.Tensor, e_inc_mev: np.ndarray, seed: int, n: int = 256) -> None:
        """ActNorm's data-dependent start of every layer flow, on a seeded batch of training images."""
        gen = torch.Generator().manual_seed(seed)
        e = torch.as_tensor(e_inc_mev, dtype=torch.float32) / 1e3
        rows = torch.randint(0, len(imgs), (n,), generator=gen)
        if self.config["shared_flow"]:
            groups = [torch.randint(0, self.n_layers, (n,), generator=gen)]
        else:
            groups = [torch.full((n,), l) for l in range(self.n_layers)]
        for layers in groups:
            x, ctx, f = self.batch(imgs, e, rows, layers, gen)
            self.flows[f].initialize(x, ctx)

    # --- training ----------------------------------------------------------------------------------
    def initial_state(self) -> dict[str, Any]:
        return {"energy_epoch": 0, "layer_epoch": 0, "history": []}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        opt = torch.optim.AdamW if c["weight_decay"] > 0 else torch.optim.Adam
        return {"energy": torch.optim.Adam(self.energy_flow.parameters(), lr=c["energy_lr"]),
                "flows": opt(self.flows.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])}

    def layer_plan(self) -> int:
        """Layer-flow epochs in total (each per-layer flow trains ``layer_epochs``)."""
        return self.config["layer_epochs"] * (1 if self.config["shared_flow"] else self.n_layers)

    def phases(self, run: ShowerRun) -> list[Phase]:
        c, state, dev = self.config, run.state, run.device
        imgs = self.images(run.data).to(dev)
        e_inc = torch.as_tensor(run.data.incident_energy, dtype=torch.float32).to(dev) / 1e3
        e_layer = self.layer_energies(imgs)
        every = run.opts.checkpoint_every

        def shares(n: int, epoch_seed: list[int]) -> np.ndarray:
            rng = np.random.default_rng(epoch_seed)
            usable = n - n % run.world  # as many batches on every rank (DDP's all-reduce)
            return rng.permutation(n)[:usable][run.rank::run.world]

        def energy_epoch() -> str:
            opt, ep = run.optimizers["energy"], state["energy_epoch"]
            for group in opt.param_groups:  # Exponential: to 0.003 lr at the end (train.py:73-97)
                group["lr"] = c["energy_lr"] * (3e-3) ** (ep / c["energy_epochs"])
            gen = torch.Generator().manual_seed(run.opts.seed * 1_000_003 + 7919 * ep + run.rank)
            order, losses = shares(len(imgs), [run.opts.seed, 11, ep]), []
            self.energy_flow.train()
            for i in range(0, len(order), c["energy_batch_size"]):
                idx = torch.as_tensor(order[i:i + c["energy_batch_size"]], device=dev)
                noisy = e_layer[idx] + (1e-6 + 2e-7 * torch.randn(len(idx), self.n_layers, generator=gen)).to(dev)
                ctx = _cond_einc(e_inc[idx])[:, None]
                loss = -self.energy_flow(ctx).log_prob(self.energy_features(noisy)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            state["energy_epoch"] += 1
            state["history"].append({"phase": "energy", "epoch": state["energy_epoch"], "nll": float(np.mean(losses))})
            return f"loss {np.mean(losses):.4g}"

        def layer_epoch() -> str:
            opt, ep = run.optimizers["flows"], state["layer_epoch"]
            shared = c["shared_flow"]
            layer, ep_of = (0, ep) if shared else divmod(ep, c["layer_epochs"])  # per-layer: layer after layer
            pairs = len(imgs) * (self.n_layers if shared else 1)
            order = shares(pairs, [run.opts.seed, 12, ep])
            per_epoch = math.ceil(len(order) / c["batch_size"])
            gen = torch.Generator().manual_seed(run.opts.seed * 1_000_003 + 104_729 * ep + run.rank)
            flow = self.flows[layer]
            flow.train()
            losses = []
            for j, i in enumerate(range(0, len(order), c["batch_size"])):
                lr, beta1 = one_cycle(ep_of * per_epoch + j, c["layer_epochs"] * per_epoch, c["lr"])
                for group in opt.param_groups:
                    group["lr"], group["betas"] = lr, (beta1, group["betas"][1])
                idx = torch.as_tensor(order[i:i + c["batch_size"]], device=dev)
                rows, layers = (idx // self.n_layers, idx % self.n_layers) if shared else (idx, torch.full_like(idx, layer))
                x, ctx, _ = self.batch(imgs, e_inc, rows, layers, gen)
                loss = -flow(x, ctx).mean()
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(flow.parameters(), c["grad_clip"])
                opt.step()
                losses.append(loss.item())
            state["layer_epoch"] += 1
            nll = float(np.mean(losses))
            state["history"].append({"phase": "layers", "epoch": state["layer_epoch"], "layer": None if shared else layer,
                                     "nll": nll})
            return f"loss {nll:.4g}" if shared else f"layer {layer} loss {nll:.4g}"

        return [Phase("layer-energy flow", c["energy_epochs"], "epochs", lambda: state["energy_epoch"], energy_epoch,
                      every or 50),
                Phase("layer flows", self.layer_plan(), "epochs", lambda: state["layer_epoch"], layer_epoch, every or 5)]

    def trained_parts(self) -> list[tuple[nn.Module, str]]:
        """The layer-energy flow and every layer flow (each separately called)."""
        return [(self, "energy_flow")] + [(self.flows, str(i)) for i in range(len(self.flows))]

    def untrained(self, state: dict[str, Any]) -> list[str]:
        c, out = self.config, []
        if state["energy_epoch"] < c["energy_epochs"]:
            out.append(f"layer-energy flow ({state['energy_epoch']} of {c['energy_epochs']} epochs)")
        if state["layer_epoch"] < self.layer_plan():
            out.append(f"layer flows ({state['layer_epoch']} of {self.layer_plan()} epochs)")
        return out

    # --- sampling ----------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, e_inc_mev: np.ndarray, seed: int) -> torch.Tensor:
        """(B, L, H, W) voxel images [GeV] in the model's orientation, cut at the threshold."""
        c, dev = self.config, self.layer_max.device
        e = torch.as_tensor(np.asarray(e_inc_mev, np.float64) / 1e3, dtype=torch.float32, device=dev)
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            f = self.energy_flow(_cond_einc(e)[:, None]).sample()
        e_layer = (_expit(f, _LOGIT_E) * self.e_max).clamp_min(0)
        gen = torch.Generator(device=dev).manual_seed(seed)
        k, b = c["cond_layers"], len(e)
        ys: list[torch.Tensor] = []
        for l in range(self.n_layers):
            n_prev = k if c["shared_flow"] else min(k, l)
            prev = [ys[j] if j >= 0 else torch.full((b, 1, *self.hw), EMPTY, device=dev) for j in range(l - n_prev, l)]
            prev_t = torch.cat(prev, 1) if prev else torch.zeros((b, 0, *self.hw), device=dev)
            layer = torch.full((b,), float(l), device=dev) if c["shared_flow"] else None
            flow = self.flows[0 if c["shared_flow"] else l]
            ys.append(flow.sample(self.context(prev_t, e_layer[:, l], e, layer), gen))
        v = torch.cat([self.from_flow(y, l) for l, y in enumerate(ys)], 1)
        if c["renormalize"]:
            v = renormalize_layers(v, e_layer, self.threshold)
        return torch.where(v >= self.threshold, v, 0)

    def sample(self, e_inc_mev: np.ndarray, seed: int = 0, batch_size: int = 64,
               steps: PipelineSteps = PipelineSteps(),
               progress: Callable[[int], None] | None = None) -> ShowerPointSet | VoxelShowerSet:
        """Showers at E_inc (N,) [MeV]: voxels (``VoxelShowerSet``) with ``steps.project`` on a
        CaloChallenge geometry, else the non-empty cells as points at their centres (a layered
        grid's cell hits).  Only ``steps.project`` applies; batch i draws from seed * 100003 + i."""
        e_inc_mev = np.asarray(e_inc_mev, np.float64)
        was = self.training
        self.eval()
        parts = []
        try:
            for i, a in enumerate(range(0, len(e_inc_mev), batch_size)):
                v = self.generate(e_inc_mev[a:a + batch_size], batch_seed(seed, i))
                v = v.transpose(2, 3) if self.cyclic else v
                parts.append(v.cpu().numpy() * 1e3)
                if progress is not None:
                    progress(len(v))
        finally:
            self.train(was)
        g = self.grid
        cells = images_to_cells(np.concatenate(parts) if parts else np.zeros((0, g.n_cells)), g)
        return cells_to_showers(cells, e_inc_mev, g, steps.project)  # the cut again in MeV (float32 rounding of the GeV cut)
