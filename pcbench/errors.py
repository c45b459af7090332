"""Exceptions that pcbench raises for bad input, with messages meant for the user.

Every class below is a :class:`PcbenchError`: the CLI prints its message as one line prefixed
``error:`` (no traceback) and exits with the class's ``exit_code``: 2 for a bad command-line value
(as click does for its own usage errors), 1 for everything else.  The library raises the same
classes, so a script can catch ``PcbenchError`` and show ``str(exc)``.  ``docs/errors.md`` lists
them with what each means.
"""

from __future__ import annotations

__all__ = [
    "PcbenchError",
    "UsageError",
    "ConfigError",
    "MetricError",
    "RegistryError",
    "FetchError",
    "ChecksumError",
    "DataUnavailableError",
    "FormatError",
    "IncompatibleError",
    "CheckpointError",
    "OutputError", "TrainingError",
]


class PcbenchError(Exception):
    """Base class: the CLI prints the message of any PcbenchError without a traceback."""

    exit_code: int = 1


class UsageError(PcbenchError):
    """A command-line value outside what the option accepts (exit 2, as click's usage errors)."""

    exit_code = 2


class ConfigError(UsageError):
    """A model or leaderboard config key that does not exist, or a value of the wrong type."""


class MetricError(UsageError):
    """A metric name that the suite does not know, or a requested metric that cannot be computed."""


class RegistryError(PcbenchError):
    """An unknown data-set name or member, or a malformed registry file."""


class FetchError(PcbenchError):
    """A download failed (HTTP error, unreachable host, time-out, retries exhausted)."""


class ChecksumError(FetchError):
    """A downloaded or cached file does not match its expected checksum."""


class DataUnavailableError(PcbenchError):
    """A data set is not in the cache (or cannot be downloaded automatically)."""


class FormatError(PcbenchError):
    """A file does not follow any layout pcbench reads; the message names file and field."""


class IncompatibleError(PcbenchError):
    """Two inputs that must agree do not: samples and reference of other kinds, geometries or sizes."""


class CheckpointError(PcbenchError):
    """A file that is not a pcbench checkpoint, a truncated one, or one of another kind of model."""


class TrainingError(PcbenchError):
    """Training that cannot go on: a loss that became NaN or infinite (the weights diverged)."""


class OutputError(UsageError):
    """An output path that cannot be written (missing parent folder, no permission)."""
