"""What every jet generator shares: the interface, data preparation, post-processing, checkpoints.

A generator works on particle clouds of one multiplicity at a time (the EPiC-GAN paper's
batching: no zero padding inside the networks).  Particle features (etarel, phirel, ptrel) are
standardised per feature and divided by ``norm_sigma`` (EPiC-GAN: sigma = 5); the multiplicity is
drawn from the training distribution; generated jets are re-centred on their axis, their ptrel
clipped to [training minimum, 1], sorted by pT and zero-padded into the JetNet layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data import JetSet
from ..._arrays import wrap_phi
from ...metrics.jet_observables import jet_kinematics
from ..generator import Generator, load_state

__all__ = ["JetStats", "JetGenerator", "equal_multiplicity_batches", "feature_bounds"]


@dataclass
class JetStats:
    """What a generator learns from its training set besides weights (stored in checkpoints).

    Attributes:
        mean, std: (3,) per-feature mean and standard deviation of the real particles.
        norm_sigma: standardised features are divided by this (EPiC-GAN: 5).
        multiplicities: (P + 1,) probability of each multiplicity 0..P in the training set.
        min_ptrel: smallest real ptrel in training (generated ptrel is floored there).
        jet_pt: (M,) training jet pT [GeV], resampled to fill the JetNet jet features.
        num_particles: P.
    """

    mean: np.ndarray
    std: np.ndarray
    norm_sigma: float
    multiplicities: np.ndarray
    min_ptrel: float
    jet_pt: np.ndarray
    num_particles: int

    @classmethod
    def fit(cls, jets: JetSet, norm_sigma: float = 5.0) -> JetStats:
        real = jets.particles[jets.mask].astype(np.float64)
        counts = np.bincount(jets.mask.sum(axis=1), minlength=jets.num_particles + 1).astype(np.float64)
        return cls(real.mean(axis=0), real.std(axis=0) + 1e-12, norm_sigma, counts / counts.sum(),
                   float(real[:, 2].min()), jets.jets[:, 0].astype(np.float64), jets.num_particles)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)) / torch.as_tensor(
            self.std / self.norm_sigma, dtype=x.dtype, device=x.device)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.as_tensor(self.std / self.norm_sigma, dtype=x.dtype, device=x.device) + torch.as_tensor(
            self.mean, dtype=x.dtype, device=x.device)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JetStats:
        return cls(**{k: (np.asarray(v) if isinstance(v, list) else v) for k, v in d.items()})


def feature_bounds(jets: JetSet | None, stats: JetStats) -> np.ndarray | None:
    """(2, 3) minimum and maximum of the training particles' features, normalised with ``stats``
    (None without jets or particles): generated features are clamped there
    (:meth:`JetGenerator.clamp_to_training`)."""
    if jets is None or not jets.mask.any():
        return None
    x = stats.normalise(torch.as_tensor(jets.particles[jets.mask], dtype=torch.float64))
    return torch.stack([x.min(0).values, x.max(0).values]).numpy()


def equal_multiplicity_batches(multiplicity: np.ndarray, batch_size: int, rng: np.random.Generator,
                               rank: int = 0, world: int = 1) -> list[np.ndarray]:
    """Index batches whose jets all have the same multiplicity, in a seeded random order.

    Jets of each multiplicity are shuffled and cut into batches of at most ``batch_size``; the
    batch order is shuffled too.  With ``world`` > 1 (distributed training) every rank gets the
    same number of batches, ``rank`` taking every ``world``-th one (extra batches are dropped).
    """
    batches = []
    for m in np.unique(multiplicity):
        if m == 0:
            continue
        idx = rng.permutation(np.flatnonzero(multiplicity == m))
        batches += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    order = rng.permutation(len(batches))
    batches = [batches[i] for i in order]
    usable = len(batches) - len(batches) % world
    return batches[rank:usable:world]


class JetGenerator(Generator):
    """Base class: a generator of (B, n, 3) normalised particle clouds at fixed multiplicity n.

    Subclasses define ``name`` and ``configs``, build their networks from ``config`` in
    ``__init__``, and implement :meth:`training_step` and :meth:`generate`.  Everything else
    (data, batching, the epochs phase, post-processing, checkpoints, sampling with timing) is
    shared.
    """

    kind = "jets"
    #: sample in batches of mixed multiplicity through :meth:`generate_mixed` (networks whose
    #: normalisation uses the batch's statistics: a rare multiplicity would make a batch of one)
    mixed_batches = False
    #: networks with parameters some losses do not reach (DistributedDataParallel must look for
    #: them each step: ``find_unused_parameters``)
    ddp_unused_parameters = False

    def __init__(self, config: dict[str, Any], stats: JetStats):
        super().__init__()
        self.config = dict(config)
        self.stats = stats

    @classmethod
    def build(cls, config: dict[str, Any], stats: JetStats, jets: JetSet | None = None) -> JetGenerator:
        """A fresh model; ``jets`` (the training jets, None when restoring a checkpoint) for models
        that keep something of them (the baseline's particle pool, EPiC-FM's conditions)."""
        return cls(config, stats)

    @classmethod
    def restore(cls, payload: dict[str, Any]) -> JetGenerator:
        model = cls.build(payload["config"], JetStats.from_dict(payload["stats"]))
        load_state(model, payload["state_dict"])
        return model

    # -- to implement --------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def training_step(self, x: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer],
                      modules: dict[str, nn.Module]) -> dict[str, float]:
        """One optimisation step on a batch x (B, n, 3) of normalised real clouds; returns losses.

        ``modules`` are the (possibly DistributedDataParallel-wrapped) trainable networks.
        """
        raise NotImplementedError

    def trainable(self) -> dict[str, nn.Module]:
        """The networks that training updates (wrapped for DDP by the trainer)."""
        raise NotImplementedError

    def generate(self, n_jets: int, multiplicity: int, generator: torch.Generator) -> torch.Tensor:
        """(n_jets, multiplicity, 3) normalised clouds (inference mode, on the model's device)."""
        raise NotImplementedError

    def keep_bounds(self, bounds: np.ndarray | None) -> None:
        """Store ``feature_bounds`` as the buffer ``bounds`` (unbounded when None: restored from
        the checkpoint)."""
        self.register_buffer("bounds", torch.as_tensor(
            bounds if bounds is not None else [[-np.inf] * 3, [np.inf] * 3], dtype=torch.float32))

    def clamp_to_training(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised clouds (..., 3) clamped to the training range (``keep_bounds``)."""
        lo, hi = self.bounds.to(x.dtype)
        return torch.maximum(torch.minimum(x, hi), lo)

    def generate_mixed(self, multiplicities: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(b, P, 3) normalised clouds, jet i's first ``multiplicities[i]`` slots its particles
        (only for ``mixed_batches`` models)."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def sample_multiplicities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(len(self.stats.multiplicities), size=n, p=self.stats.multiplicities)

    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0, batch_size: int = 1024,
               multiplicities: np.ndarray | None = None, progress: Callable[[int], None] | None = None) -> JetSet:
        """``n`` jets in the JetNet layout: multiplicities from the training distribution (or
        given), clouds generated per multiplicity in batches, then post-processed.  ``progress``
        is called with the number of jets of each finished batch."""
        self.eval()
        rng = np.random.default_rng(seed)
        mult = self.sample_multiplicities(n, rng) if multiplicities is None else np.asarray(multiplicities)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        p = self.stats.num_particles
        out = np.zeros((n, p, 3), dtype=np.float32)
        groups = ([(None, np.flatnonzero(mult > 0))] if self.mixed_batches else
                  [(int(m), np.flatnonzero(mult == m)) for m in np.unique(mult) if m > 0])
        for m, rows in groups:
            for lo in range(0, len(rows), batch_size):
                part = rows[lo:lo + batch_size]
                if m is None:
                    counts = torch.as_tensor(mult[part], device=self.device)
                    out[part] = self.stats.denormalise(self.generate_mixed(counts, gen).double()).cpu().numpy()
                else:
                    out[part, :m] = self.stats.denormalise(self.generate(len(part), m, gen).double()).cpu().numpy()
                if progress is not None:
                    progress(len(part))
        return self.postprocess(out, mult, rng)

    def postprocess(self, particles: np.ndarray, mult: np.ndarray, rng: np.random.Generator) -> JetSet:
        """Centre on the jet axis, clip ptrel to [training minimum, 1], sort by pT, zero-pad, and fill
        the jet features."""
        n, p, _ = particles.shape
        mask = np.arange(p)[None, :] < mult[:, None]
        particles[..., 2] = np.where(mask, np.clip(particles[..., 2], self.stats.min_ptrel, 1.0), 0.0)
        kin = jet_kinematics(particles, mask)
        particles[..., 0] = np.where(mask, particles[..., 0] - kin["eta"][:, None], 0.0)
        particles[..., 1] = np.where(mask, wrap_phi(particles[..., 1] - kin["phi"][:, None]), 0.0)
        order = np.argsort(-particles[..., 2], axis=1, kind="stable")
        particles = np.take_along_axis(particles, order[..., None], axis=1)
        pt_jet = rng.choice(self.stats.jet_pt, size=n)
        kin = jet_kinematics(particles, mask)
        jets = np.column_stack([pt_jet, np.zeros(n), kin["mass"] * pt_jet, mult]).astype(np.float32)
        pf = np.concatenate([particles, mask[..., None]], axis=-1).astype(np.float32)
        pf[~mask] = 0.0
        return JetSet.from_jetnet(pf, jets, attrs={"model": self.name})

    def n_parameters(self) -> dict[str, int]:
        return {k: sum(p.numel() for p in m.parameters()) for k, m in self.trainable().items()}
