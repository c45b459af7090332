"""The generator registry: one line per model; ``build_model`` makes any of them from data."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data import JetSet
from .base import JetGenerator, JetStats
from ..errors import ConfigError
from .baseline import IndependentParticles
from .config import configured
from .epic_fm import EPiCFM
from .epic_gan import EPiCGAN
from .mpgan import MPGAN

__all__ = ["MODELS", "build_model", "model_config"]

MODELS: dict[str, type[JetGenerator]] = {m.name: m for m in (EPiCGAN, EPiCFM, MPGAN, IndependentParticles)}


def model_config(name: str, config: str | dict[str, Any] = "small", **overrides: Any) -> dict[str, Any]:
    """A named config (``small``, ``full``) of model ``name``, with ``overrides`` applied."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return configured(name, MODELS[name].configs, config, **overrides)


def build_model(name: str, config: dict[str, Any], jets: JetSet | None = None,
                stats: JetStats | None = None) -> JetGenerator:
    """A fresh model fitted to ``jets`` (statistics), or restored from ``stats`` (checkpoints)."""
    stats = stats or JetStats.fit(jets)
    cls = MODELS[name]
    if cls is EPiCFM:
        conditions = None
        if jets is not None and config.get("conditional"):
            x = stats.normalise(torch.as_tensor(jets.particles, dtype=torch.float64))
            conditions = _conditions_by_jet(x, jets.mask, stats)
        return EPiCFM(config, stats, conditions)
    if cls is IndependentParticles:
        return IndependentParticles(config, stats, jets)
    return cls(config, stats)


def _conditions_by_jet(x, mask: np.ndarray, stats: JetStats) -> np.ndarray:
    """(N, 2) EPiC-FM conditions of every training jet, each computed on its real particles."""
    out = np.zeros((len(mask), 2), np.float32)
    counts = mask.sum(1)
    for m in np.unique(counts):
        rows = np.flatnonzero(counts == m)
        out[rows] = EPiCFM.jet_conditions(x[rows, :m], stats).numpy()
    return out if len(out) else np.zeros((1, 2), np.float32)
