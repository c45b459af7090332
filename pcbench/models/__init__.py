"""The reference generators under one registry (``registry.GENERATORS``) and one interface
(``generator.Generator``): jets (EPiC-GAN, EPiC-FM, MP-GAN, the independent-particle baseline;
``jets.base.JetGenerator``) and showers (CaloClouds, CaloClouds II, CaloClouds II (CM), the shower
baseline; ``showers.base.ShowerGenerator``), one training loop (``trainer``), and the library
functions the CLI and the leaderboard call (``api``: training data, train, load, sample)."""

from .api import (Sampled, TrainingData, load_generator, require_teacher, sample, train, training_data,
                  training_provenance)
from .generator import Generator
from .jets.base import JetGenerator, JetStats
from .registry import GENERATORS, MODELS, SHOWER_MODELS, build_model, generator_class, kind_of, model_config, register
from .sampling import sample_jets, sample_showers, time_generation
from .trainer import TrainOptions

__all__ = ["Sampled", "TrainingData", "load_generator", "require_teacher", "sample", "train", "training_data", "training_provenance",
           "Generator", "JetGenerator", "JetStats", "GENERATORS", "MODELS", "SHOWER_MODELS", "build_model",
           "generator_class", "kind_of", "model_config", "register", "sample_jets", "sample_showers",
           "time_generation", "TrainOptions"]
