"""The leaderboard config: a typed schema (frozen dataclasses) for jets and showers alike.

A config (``leaderboard/<name>/config.yaml``) names its data, its models, how to train, sample
and evaluate them.  Every key is checked: an unknown or misspelt key anywhere, a value of the
wrong type, or a missing required key is a :class:`ConfigError` naming the file and the key path
(``models[2].set``, ``sample.energies_from``).  Example (showers)::

    name: ild-smoke
    data: {simulate: ild-photons, n: 300, seed: 1, workers: 2}   # or {dataset: ild-photons}
    threads: 2
    train: {seed: 0}
    sample: {energies_from: reference, seed: 0, batch_size: 64}
    evaluate: {profile: fast, plots: true}
    cost: {batches: [1, 100], threads: [1], repeats: 3, pareto: w1_e_ratio}   # pcbench time (optional)
    models:
      - {name: shower-baseline}
      - {name: caloclouds2, label: caloclouds2, set: {diffusion_steps: 50}, max_minutes: 5}
      - {name: caloclouds2-cm, teacher: caloclouds2}
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.simulate.targets import JET_TARGETS, SHOWER_TARGETS
from ..errors import ConfigError

__all__ = ["DataConfig", "TrainConfig", "SampleConfig", "EvaluateConfig", "CostConfig", "ModelEntry", "ToleranceConfig",
           "LeaderboardConfig", "load_config", "parse_config", "SIMULATED"]

#: ``data.simulate`` values: the offline data of each kind
SIMULATED = {**{t: "jets" for t in JET_TARGETS}, **{t: "showers" for t in SHOWER_TARGETS}}


@dataclass(frozen=True)
class DataConfig:
    """The benchmark's data: ``simulate`` offline data (``n`` objects, ``seed``), or a registry
    ``dataset``.  Splits: jetnet's 70/15/15 convention for simulated data (train / valid / test),
    the registry's for a data set.  ``cache`` (jets): keep the simulated jets in the pcbench cache."""

    simulate: str | None = None
    dataset: str | None = None
    jet_type: str = "g"
    n: int | None = None
    seed: int = 1
    workers: int = 1
    cache: bool = False

    @property
    def kind(self) -> str:
        """``jets`` or ``showers``."""
        if self.simulate:
            return SIMULATED[self.simulate]
        from ..data import default_registry

        return "jets" if default_registry().resolve(self.dataset)[0].kind == "jets" else "showers"


@dataclass(frozen=True)
class TrainConfig:
    """Training settings shared by every model: seed, validation interval (jets), torch device,
    and the ``clock`` every row's ``max_minutes`` counts (``wall``, or ``cpu``: the process's CPU
    time, a budget that other load on the machine does not shrink)."""

    seed: int = 0
    val_every: int = 0
    device: str = "cpu"
    clock: str = "wall"


@dataclass(frozen=True)
class SampleConfig:
    """Sampling: ``n`` objects (jets default 1,000; showers: as many as the reference holds),
    ``energies_from: reference`` (showers: the reference's incident energies, so that the
    evaluation compares like with like)."""

    n: int | None = None
    seed: int = 0
    batch_size: int | None = None
    energies_from: str | None = None


@dataclass(frozen=True)
class EvaluateConfig:
    """The suite's profile and metrics (empty: all), and whether to write figures and reports;
    the per-bin runs, null draws and equivalent statistics of ``evaluate`` (its arguments of the
    same names, ``docs/evaluation-practice.md``)."""

    profile: str = "fast"
    metrics: tuple[str, ...] = ()
    plots: bool = False
    per_bin: bool = False
    energy_bins: str = "auto"
    jet_bins: str = "pt:4"
    null: int = 0
    equivalent_stats: bool = False


@dataclass(frozen=True)
class CostConfig:
    """``pcbench time`` for every row (``models/cost.py``): the batch sizes [objects per call]
    and torch thread counts to time, and the timed repeats; no ``batches``: not measured.
    ``pareto``: a metric whose Pareto figure against time per object is written with the tables."""

    batches: tuple[int, ...] = ()
    threads: tuple[int, ...] = (1,)
    repeats: int = 3
    pareto: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One row: a registered generator ``name`` with a named ``config`` and ``set`` overrides;
    ``label`` names the row (default: the name); ``epochs`` (jets) and ``max_minutes`` bound the
    training; ``val_every`` (jets) overrides ``train.val_every`` for this row (a generator whose
    reference code keeps its best validation epoch); ``teacher`` (caloclouds2-cm) is the label of
    an earlier row to distil."""

    name: str
    label: str | None = None
    config: str = "small"
    epochs: int | None = None
    max_minutes: float | None = None
    set: dict[str, Any] = field(default_factory=dict)
    val_every: int | None = None
    teacher: str | None = None

    @property
    def row(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class ToleranceConfig:
    """``reproduce`` on another platform: agreement within ``n_sigma`` errors."""

    n_sigma: float = 2.0


@dataclass(frozen=True)
class LeaderboardConfig:
    """A whole leaderboard config (see the module docstring)."""

    name: str
    data: DataConfig
    models: tuple[ModelEntry, ...]
    description: str = ""
    threads: int | None = None
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    cost: CostConfig = CostConfig()
    tolerance: ToleranceConfig = ToleranceConfig()

    @property
    def kind(self) -> str:
        return self.data.kind


def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _value(tp: Any, value: Any, where: str, source: str) -> Any:
    """``value`` converted to ``tp`` (the annotation), or a ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where, source)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, where, source)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: {where}: expected a list, got {value!r}")
        inner = typing.get_args(tp)[0]
        return tuple(_value(inner, v, f"{where}[{i}]", source) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {where}: expected a mapping, got {value!r}")
        return dict(value)
    ok = (isinstance(value, bool) if tp is bool else
          isinstance(value, int | float) and not isinstance(value, bool) if tp is float else
          isinstance(value, int) and not isinstance(value, bool) if tp is int else
          isinstance(value, tp))
    if not ok:
        raise ConfigError(f"{source}: {where}: expected {_type_name(tp)}, got {value!r}")
    return float(value) if tp is float else value


def _dataclass(cls: type, value: Any, where: str, source: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where or 'the config'}: expected a mapping, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    for key in value:
        if key not in fields:
            raise ConfigError(f"{source}: unknown key {prefix}{key}; expected one of {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _value(hints[name], value[name], f"{prefix}{name}", source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing key {prefix}{name}")
    return cls(**kwargs)


def _check(cfg: LeaderboardConfig, source: str) -> None:
    """What the types cannot say: one data source, known models of the data's kind, teachers."""
    from ..models.registry import GENERATORS
    from ..models.trainer import CLOCKS

    d = cfg.data
    if cfg.train.clock not in CLOCKS:
        raise ConfigError(f"{source}: train.clock: {cfg.train.clock!r}; expected {' or '.join(CLOCKS)}")
    if (d.simulate is None) == (d.dataset is None):
        raise ConfigError(f"{source}: data: give exactly one of simulate ({', '.join(SIMULATED)}) or dataset "
                          "(a registry name)")
    if d.simulate is not None:
        if d.simulate not in SIMULATED:
            raise ConfigError(f"{source}: data.simulate: {d.simulate!r}; expected one of {', '.join(SIMULATED)}")
        if d.n is None or d.n < 10:
            raise ConfigError(f"{source}: data.n: simulated data need n (at least 10 objects), got {d.n!r}")
    else:
        from ..data import default_registry
        from ..errors import RegistryError

        try:
            default_registry().resolve(d.dataset)
        except (RegistryError, KeyError) as exc:
            raise ConfigError(f"{source}: data.dataset: {exc}") from None
    if not cfg.models:
        raise ConfigError(f"{source}: models: expected at least one model")
    known = [n for n, c in GENERATORS.items() if c.kind == cfg.kind]
    seen: list[str] = []
    for i, m in enumerate(cfg.models):
        if m.name not in known:
            raise ConfigError(f"{source}: models[{i}].name: {m.name!r} is not a {cfg.kind[:-1]} generator; expected "
                              f"one of {', '.join(known)}")
        if m.row in seen:
            raise ConfigError(f"{source}: models[{i}]: a second row labelled {m.row!r}; give it another label")
        if m.teacher is not None and m.teacher not in seen:
            raise ConfigError(f"{source}: models[{i}].teacher: {m.teacher!r} is not the label of an earlier model")
        if cfg.kind == "showers" and m.epochs is not None:
            raise ConfigError(f"{source}: models[{i}].epochs: shower models train for their config's flow_epochs and "
                              "steps; set them with set: {flow_epochs: N, diffusion_steps: N}")
        seen.append(m.row)
    if cfg.sample.energies_from not in (None, "reference"):
        raise ConfigError(f"{source}: sample.energies_from: {cfg.sample.energies_from!r}; expected reference")
    if cfg.evaluate.profile not in ("fast", "full"):
        raise ConfigError(f"{source}: evaluate.profile: {cfg.evaluate.profile!r}; expected fast or full")


def parse_config(value: Any, source: str = "the config") -> LeaderboardConfig:
    """A checked :class:`LeaderboardConfig` from a mapping (``source`` names it in errors)."""
    if isinstance(value, LeaderboardConfig):
        return value
    cfg = _dataclass(LeaderboardConfig, value, "", source)
    _check(cfg, source)
    return cfg


def load_config(path: str | os.PathLike[str]) -> LeaderboardConfig:
    """Read and check a leaderboard config; errors name the file and the key path."""
    path = Path(path)
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc}") from exc
    return parse_config(value, str(path))
