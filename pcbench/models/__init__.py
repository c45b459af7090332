"""Reference jet generators behind one interface: EPiC-GAN, EPiC-FM, MP-GAN and a trivial baseline."""

from .base import JetGenerator, JetStats
from .registry import MODELS, build_model, model_config
from .sampling import sample_jets, time_generation
from .training import TrainOptions, load_model, train

__all__ = ["JetGenerator", "JetStats", "MODELS", "build_model", "model_config", "sample_jets", "time_generation",
           "TrainOptions", "load_model", "train"]
