"""The reference generators under one registry (``registry.GENERATORS``): jets (EPiC-GAN, EPiC-FM,
MP-GAN, the independent-particle baseline; one interface, ``base.JetGenerator``, one trainer) and
showers (CaloClouds, CaloClouds II, CaloClouds II (CM), the shower baseline; ``showers.training``)."""

from .jets.base import JetGenerator, JetStats
from .registry import GENERATORS, MODELS, SHOWER_MODELS, build_model, kind_of, model_config
from .sampling import sample_jets, time_generation
from .jets.training import TrainOptions, load_model, train

__all__ = ["JetGenerator", "JetStats", "GENERATORS", "MODELS", "SHOWER_MODELS", "build_model", "kind_of", "model_config",
           "sample_jets", "time_generation", "TrainOptions", "load_model", "train"]
