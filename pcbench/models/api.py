"""The generators' library functions, called alike by ``pcbench train`` / ``sample`` and by the
leaderboard pipeline: training data from a registry name or a file, training any registered
generator, restoring any checkpoint, and sampling any checkpoint (or released generator) into a
sample file with its generation time.  The CLI only parses, calls these and prints."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Cache, JetSet, ShowerPointSet, VoxelShowerSet, infer_jet_type, load, read
from ..data.loaders import split_indices
from ..errors import CheckpointError, IncompatibleError, UsageError
from .checkpoints import load_checkpoint_file
from .generator import Generator
from .registry import GENERATORS, generator_class
from .trainer import TrainOptions

__all__ = ["TrainingData", "training_data", "training_provenance", "train", "require_teacher", "load_generator", "Sampled", "sample"]


@dataclass
class TrainingData:
    """A generator's training set, its validation set (jets; None for showers) and what the
    checkpoint records about them (``training_provenance``)."""

    train: JetSet | ShowerPointSet | VoxelShowerSet
    valid: JetSet | None
    provenance: dict[str, Any]


def training_provenance(train: JetSet | ShowerPointSet | VoxelShowerSet, source: dict[str, Any],
                        config_name: str, jet_type: str | None = None) -> dict[str, Any]:
    """What a checkpoint records about its training data: ``source`` (data name and split, or
    file), the config name and the count; jets: their class (``jet_type``, else the data's own);
    showers: the incident-energy range [MeV] (sampling's default range) and whether they are
    parameterised (carried into every sample and record)."""
    prov = {**source, "config_name": config_name}
    if isinstance(train, JetSet):
        return {**prov, "jet_type": jet_type or infer_jet_type(train), "n_jets": len(train)}
    return {**prov, "energy_range_mev": [float(train.incident_energy.min()), float(train.incident_energy.max())],
            "parameterised": bool(train.attrs.get("parameterised", False)), "n_showers": len(train)}


def _require(data: Any, kinds: type | tuple[type, ...], source: str, trains_on: str) -> Any:
    """``data`` if it is of ``kinds``; else one line naming the source and what the model trains on."""
    if not isinstance(data, kinds):
        raise IncompatibleError(f"{source}: holds {data.kind}, but {trains_on}")
    return data


def training_data(name: str, data: str | None = None, data_file: str | os.PathLike[str] | None = None,
                  cache: Cache | None = None, config_name: str = "small", jet_type: str | None = None) -> TrainingData:
    """Generator ``name``'s training data from a registry name (``data``: its train and valid
    splits) or a file (``data_file``; jets are then split 70/15/15 as jetnet splits)."""
    cls = generator_class(name)
    cache = cache or Cache()
    if data_file is None and data is None:
        example = "jetnet30:g or jetnet30-sim:g" if cls.kind == "jets" else "ild-photons-param"
        raise UsageError(f"give --data NAME (e.g. {example}) or --data-file FILE")
    source = f"--data-file {data_file}" if data_file is not None else f"--data {data}"
    if cls.kind == "jets":
        if data_file is not None:
            jets = _require(read(data_file), JetSet, source, "a jet model trains on jets (the JetNet layout)")
            train_set, valid = (jets.subset(split_indices(len(jets), s)) for s in ("train", "valid"))
            where = {"data_file": str(data_file), "split": "jetnet 70/15/15 seed 42"}
        else:
            train_set = _require(load(data, "train", cache), JetSet, source, "a jet model trains on jets")
            valid, where = load(data, "valid", cache), {"data": data, "split": "train/valid"}
        return TrainingData(train_set, valid, training_provenance(train_set, where, config_name, jet_type))
    showers = read(data_file) if data_file is not None else load(data, "train", cache)
    _require(showers, (ShowerPointSet, VoxelShowerSet), source,
             f"{name} trains on showers (points, or CaloChallenge voxels turned into points)")
    where = {"data_file": str(data_file)} if data_file is not None else {"data": data, "split": "train"}
    return TrainingData(showers, None, training_provenance(showers, where, config_name))


def train(name: str, config: dict[str, Any], data: JetSet | ShowerPointSet | VoxelShowerSet, opts: TrainOptions,
          valid: JetSet | None = None) -> Path:
    """Train generator ``name`` (``config``: its settings, e.g. ``model_config(name, "small")``)
    on ``data`` with ``opts``; returns the checkpoint to sample (jets: ``best.pt`` by validation
    W1M when validated, else ``last.pt``; showers: ``last.pt``).  A distillation's teacher is
    ``opts.teacher``, which must be a checkpoint of the model the student distils."""
    cls = generator_class(name)
    if cls.kind == "jets":
        from .jets.training import train_jets

        _require(data, JetSet, f"{name}'s training data", "a jet model trains on jets")
        return train_jets(cls, config, data, opts, valid)
    from .showers.training import train_showers

    teacher = None
    if require_teacher(name, opts.teacher):
        teacher, payload = load_generator(opts.teacher, opts.device)
        if payload["model"] != cls.teacher_of:
            raise CheckpointError(f"--teacher {opts.teacher}: a checkpoint of {payload['model']!r}; {name} distils "
                                  f"{cls.teacher_of!r}")
        opts.provenance = {**opts.provenance, "teacher": str(opts.teacher)}
    return train_showers(cls, config, data, opts, teacher)


def require_teacher(name: str, teacher: str | os.PathLike[str] | None) -> bool:
    """Whether generator ``name`` distils a teacher; a UsageError if it does and none is given."""
    cls = generator_class(name)
    if cls.teacher_of is not None and teacher is None:
        raise UsageError(f"{name} distils a trained {cls.teacher_of}: give --teacher CKPT")
    return cls.teacher_of is not None


def load_generator(path: str | os.PathLike[str], device: str = "cpu",
                   kind: str | None = None) -> tuple[Generator, dict[str, Any]]:
    """Any generator restored from its checkpoint (eval mode, on ``device``) and the checkpoint's
    payload; ``kind`` (jets, showers): refuse a checkpoint of another kind."""
    payload = load_checkpoint_file(path, device)
    cls = GENERATORS.get(payload["model"])
    if cls is None or (kind is not None and cls.kind != kind):
        known = ", ".join(n for n, c in GENERATORS.items() if kind is None or c.kind == kind)
        raise CheckpointError(f"{path}: a checkpoint of {payload['model']!r}, not of a {kind or 'known'} generator "
                              f"({known})")
    return cls.restore(payload).to(device).eval(), payload


@dataclass
class Sampled:
    """A written sample file: its path, its attributes (model, timing, hardware, ...), what it
    holds (jets, showers) and how many."""

    path: Path
    attrs: dict[str, Any]
    kind: str
    n: int


def sample(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], n: int | None = None,
           batch_size: int | None = None, device: str = "cpu", seed: int = 0,
           energies_mev: np.ndarray | None = None, steps: Any = None, project: bool | None = None,
           progress: bool = False) -> Sampled:
    """Sample a checkpoint, or a released generator (``mpgan-release:NAME`` or its folder), into
    ``out``: ``n`` jets (default 50,000, batch 1,024) or showers (batch 64; at ``energies_mev``,
    e.g. a reference's, whose length is the default ``n``); ``steps`` and ``project``: the
    shower pipeline's steps and output (``sampling.sample_showers``)."""
    from .jets.mpgan_release import is_release_spec, sample_release

    if is_release_spec(str(checkpoint)):
        path, attrs = sample_release(str(checkpoint), n or 50_000, out, seed, batch_size, device)
        return Sampled(path, attrs, "jets", n or 50_000)
    loaded = load_generator(checkpoint, device)  # read once: its kind chooses the path, the sampler uses it
    if loaded[0].kind == "showers":
        from .sampling import sample_showers

        if n is None and energies_mev is None:
            raise UsageError("showers have no default count: give -n N, or --energies-from REF to sample as many "
                             "showers as REF holds, at its incident energies")
        n = n or len(energies_mev)
        if energies_mev is not None and len(energies_mev) < n:
            raise UsageError(f"--energies-from holds {len(energies_mev)} showers, fewer than -n {n}")
        path, attrs = sample_showers(checkpoint, n, out, batch_size or 64, device, seed, energies_mev, steps, project,
                                     progress, loaded)
        return Sampled(path, attrs, "showers", n)
    from .sampling import sample_jets

    path, attrs = sample_jets(checkpoint, n or 50_000, out, batch_size or 1024, device, seed, progress, loaded)
    return Sampled(path, attrs, "jets", n or 50_000)
