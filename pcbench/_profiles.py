"""Named settings profiles: ``full`` (the published settings, a dataclass's defaults) and
``fast`` (CPU-sized, for tests and demos), shared by the metric suites and the DNN classifier."""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Profiles"]


class Profiles:
    """Mixin for a frozen settings dataclass: ``FAST`` holds the values the ``fast`` profile changes."""

    FAST: ClassVar[dict[str, Any]] = {}
    METRICS: ClassVar[tuple[str, ...]] = ()  # the metric names a suite computes (empty: not a suite)
    SUITE: ClassVar[str] = ""  # the suite's name in messages

    @classmethod
    def named(cls, profile: str, **overrides: Any):
        """The ``full`` or ``fast`` settings, with ``overrides`` on top."""
        if profile not in ("full", "fast"):
            raise ValueError(f"unknown profile {profile!r} for {cls.__name__}; expected 'full' or 'fast'")
        unknown = [m for m in overrides.get("metrics", ()) if cls.METRICS and m not in cls.METRICS]
        if unknown:
            from .errors import MetricError

            raise MetricError(f"unknown metric(s) {', '.join(map(repr, unknown))} for the {cls.SUITE} suite; known: "
                              f"{', '.join(cls.METRICS)}")
        return cls(**{**(cls.FAST if profile == "fast" else {}), **overrides})  # type: ignore[call-arg]
