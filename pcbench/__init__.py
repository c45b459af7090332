"""pcbench: a benchmark toolkit for point-cloud generative models in particle physics.

The package follows the data flow: :mod:`pcbench.data` (registry, fetch, formats, simulation),
:mod:`pcbench.geometry` (cell geometries, projection), :mod:`pcbench.metrics` (pure functions),
:mod:`pcbench.models` (generators) and :mod:`pcbench.leaderboard` (records, tables), with a thin
command line (:mod:`pcbench.cli`) on top.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
