"""Exceptions that pcbench raises for bad input, with messages meant for the user."""

from __future__ import annotations

__all__ = [
    "PcbenchError",
    "RegistryError",
    "FetchError",
    "ChecksumError",
    "DataUnavailableError",
    "FormatError",
]


class PcbenchError(Exception):
    """Base class: the CLI prints the message of any PcbenchError without a traceback."""


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
