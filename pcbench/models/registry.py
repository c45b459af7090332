"""The generator registry, jets and showers: one line per model (``GENERATORS``: name -> kind and
class); ``model_config`` gives any model's named config with checked overrides, ``kind_of`` its
kind; ``build_model`` makes a jet model from data (shower models: ``shower_training``)."""

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
from .caloclouds import CaloClouds
from .caloclouds2 import CaloClouds2
from .caloclouds2_cm import CaloClouds2CM
from .shower_baseline import IndependentShowerPoints

__all__ = ["GENERATORS", "MODELS", "SHOWER_MODELS", "build_model", "kind_of", "model_config"]

#: every generator: name -> (kind of its data, class)
GENERATORS: dict[str, tuple[str, type]] = {
    **{m.name: ("jets", m) for m in (EPiCGAN, EPiCFM, MPGAN, IndependentParticles)},
    **{m.name: ("showers", m) for m in (CaloClouds, CaloClouds2, CaloClouds2CM, IndependentShowerPoints)},
}
#: the jet generators and the shower generators (views of ``GENERATORS``)
MODELS: dict[str, type[JetGenerator]] = {n: c for n, (k, c) in GENERATORS.items() if k == "jets"}
SHOWER_MODELS: dict[str, type] = {n: c for n, (k, c) in GENERATORS.items() if k == "showers"}


def kind_of(name: str) -> str:
    """``jets`` or ``showers``: what generator ``name`` makes (a ConfigError naming the known ones)."""
    if name not in GENERATORS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[name][0]


def model_config(name: str, config: str | dict[str, Any] = "small", **overrides: Any) -> dict[str, Any]:
    """A named config (``small``, ``full``) of any model ``name``, with ``overrides`` applied
    (each checked against the config's keys and types)."""
    kind_of(name)
    return configured(name, GENERATORS[name][1].configs, config, **overrides)


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
