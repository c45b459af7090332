"""Model configs: a named config (``small``, ``full``) with ``--set key=value`` overrides, checked
against the model's own settings (name and type), and the run-time checks of ``--device``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .._device import check_device
from ..errors import ConfigError

__all__ = ["parse_sets", "configured", "check_device"]


def parse_sets(items: Iterable[str]) -> dict[str, Any]:
    """``["epochs=10", "grid=ild-ecal"]`` -> ``{"epochs": 10, "grid": "ild-ecal"}`` (JSON values,
    bare words as strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set epochs=10")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _type_name(v: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(v), type(v).__name__)


def _fits(default: Any, value: Any) -> bool:
    """Whether ``value`` may replace ``default`` (an int where a float is expected is fine)."""
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def configured(model: str, configs: Mapping[str, Mapping[str, Any]], config: str | Mapping[str, Any] = "small",
               **overrides: Any) -> dict[str, Any]:
    """The named config of ``model`` with ``overrides`` applied; every key must be one of the
    model's settings (those of its ``full`` config) and every value of the setting's type."""
    if isinstance(config, str):
        if config not in configs:
            raise ConfigError(f"{model} has no config {config!r}; known: {', '.join(configs)}")
        base = dict(configs[config])
    else:
        base = dict(config)
    known = configs["full"]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ConfigError(f"--set {unknown[0]}: {model} has no setting {unknown[0]!r}; its settings: "
                          f"{', '.join(sorted(known))}")
    for key, value in overrides.items():
        if not _fits(known[key], value):
            raise ConfigError(f"--set {key}={json.dumps(value) if not isinstance(value, str) else value}: expected "
                              f"{_type_name(known[key])} (the full config has {json.dumps(known[key])})")
    return {**base, **{k: v for k, v in overrides.items() if v is not None}}
