"""The generator registry, jets and showers: one line per model (``GENERATORS``: name -> kind and
class); ``model_config`` gives any model's named config with checked overrides, ``kind_of`` its
kind; ``build_model`` makes a jet model from data (shower models: ``showers.training``)."""

from __future__ import annotations

from typing import Any

from ..data import JetSet
from .jets.base import JetGenerator, JetStats
from ..errors import ConfigError
from .jets.baseline import IndependentParticles
from .config import configured
from .jets.epic_fm import EPiCFM
from .jets.epic_gan import EPiCGAN
from .jets.mpgan import MPGAN
from .showers.caloclouds import CaloClouds
from .showers.caloclouds2 import CaloClouds2
from .showers.caloclouds2_cm import CaloClouds2CM
from .showers.baseline import IndependentShowerPoints

__all__ = ["GENERATORS", "MODELS", "SHOWER_MODELS", "build_model", "kind_of", "model_config", "register"]

#: every generator: name -> (kind of its data, class)
GENERATORS: dict[str, tuple[str, type]] = {
    **{m.name: ("jets", m) for m in (EPiCGAN, EPiCFM, MPGAN, IndependentParticles)},
    **{m.name: ("showers", m) for m in (CaloClouds, CaloClouds2, CaloClouds2CM, IndependentShowerPoints)},
}
#: the jet generators and the shower generators (views of ``GENERATORS``)
MODELS: dict[str, type[JetGenerator]] = {n: c for n, (k, c) in GENERATORS.items() if k == "jets"}
SHOWER_MODELS: dict[str, type] = {n: c for n, (k, c) in GENERATORS.items() if k == "showers"}


def register(cls: type, kind: str) -> type:
    """Add generator ``cls`` (its ``name``, ``configs``) of ``kind`` (jets, showers) to the registry:
    the one line a new model needs, here in ``GENERATORS`` or by a plug-in calling this."""
    if kind not in ("jets", "showers"):
        raise ConfigError(f"register {cls.__name__}: kind {kind!r}; expected jets or showers")
    GENERATORS[cls.name] = (kind, cls)
    (MODELS if kind == "jets" else SHOWER_MODELS)[cls.name] = cls
    return cls


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
    """A fresh jet model fitted to ``jets`` (statistics), or restored from ``stats`` (checkpoints)."""
    return MODELS[name].build(config, stats or JetStats.fit(jets), jets)
