"""The generator registry, jets and showers: one line per model (``GENERATORS``: name -> class;
the class says its ``kind``); ``model_config`` gives any model's named config with checked
overrides, ``generator_class`` and ``kind_of`` what a name is, ``build_model`` a fresh jet model."""

from __future__ import annotations

from typing import Any

from ..data import JetSet
from ..errors import ConfigError
from .config import configured
from .generator import Generator
from .jets.base import JetGenerator, JetStats
from .jets.baseline import IndependentParticles
from .jets.deeptree import DeepTreeGAN
from .jets.epic_fm import EPiCFM
from .jets.epic_gan import EPiCGAN
from .jets.epic_jedi import EPiCJeDi
from .jets.mdma import MDMA
from .jets.mpgan import MPGAN
from .jets.pc_jedi import PCJeDi
from .showers.baseline import IndependentShowerPoints
from .showers.bibae import BIBAE
from .showers.caloclouds import CaloClouds
from .showers.caloclouds2 import CaloClouds2
from .showers.caloclouds2_cm import CaloClouds2CM
from .showers.deeptree import DeepTreeShowers
from .showers.l2lflow import ConvL2LFlow
from .showers.calopointflow import CaloPointFlow
from .showers.mdma import MDMAShowers

__all__ = ["GENERATORS", "MODELS", "SHOWER_MODELS", "build_model", "generator_class", "kind_of", "model_config",
           "register"]

#: every generator: name -> class (its ``kind``: jets or showers)
GENERATORS: dict[str, type[Generator]] = {m.name: m for m in (
    EPiCGAN, EPiCFM, EPiCJeDi, PCJeDi, MDMA, DeepTreeGAN, MPGAN, IndependentParticles,
    CaloClouds, CaloClouds2, CaloClouds2CM, IndependentShowerPoints, MDMAShowers, CaloPointFlow,
    DeepTreeShowers, BIBAE, ConvL2LFlow,
)}
#: the jet generators and the shower generators (views of ``GENERATORS``, kept by ``register``)
MODELS: dict[str, type[JetGenerator]] = {n: c for n, c in GENERATORS.items() if c.kind == "jets"}  # type: ignore[misc]
SHOWER_MODELS: dict[str, type[Generator]] = {n: c for n, c in GENERATORS.items() if c.kind == "showers"}


def register(cls: type[Generator]) -> type[Generator]:
    """Add generator ``cls`` (its ``name``, ``kind``, ``configs``) to the registry: the one line a
    new model needs, here in ``GENERATORS`` or by a plug-in calling this (usable as a decorator)."""
    if cls.kind not in ("jets", "showers"):
        raise ConfigError(f"register {cls.__name__}: kind {cls.kind!r}; expected jets or showers "
                          "(subclass JetGenerator or ShowerGenerator)")
    GENERATORS[cls.name] = cls
    (MODELS if cls.kind == "jets" else SHOWER_MODELS)[cls.name] = cls
    return cls


def generator_class(name: str) -> type[Generator]:
    """The class of generator ``name`` (a ConfigError naming the known ones)."""
    if name not in GENERATORS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[name]


def kind_of(name: str) -> str:
    """``jets`` or ``showers``: what generator ``name`` makes."""
    return generator_class(name).kind


def model_config(name: str, config: str | dict[str, Any] = "small", **overrides: Any) -> dict[str, Any]:
    """A named config (``small``, ``full``) of any model ``name``, with ``overrides`` applied
    (each checked against the config's keys and types)."""
    return configured(name, generator_class(name).configs, config, **overrides)


def build_model(name: str, config: dict[str, Any], jets: JetSet | None = None,
                stats: JetStats | None = None) -> JetGenerator:
    """A fresh jet model fitted to ``jets`` (statistics), or restored from ``stats`` (checkpoints)."""
    return MODELS[name].build(config, stats or JetStats.fit(jets), jets)
