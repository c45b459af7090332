"""pcbench: a benchmark toolkit for point-cloud generative models in particle physics.

Layers, each importing only those below it (``tests/test_layers.py`` checks it):

- :mod:`pcbench.cli`: the command line, thin over the library;
- :mod:`pcbench.leaderboard`: configs, the pipeline, tables, reproduction, the site;
- :mod:`pcbench.evaluate` (suites, protocol, records, reports) beside :mod:`pcbench.models`
  (one Generator interface and registry; ``jets/`` and ``showers/`` side by side on the one
  training loop; ``api``: train, load, sample): neither imports the other;
- :mod:`pcbench.data` (registry, fetch, formats, simulation, streamed sources) beside
  :mod:`pcbench.metrics` (pure functions: arrays in, numbers out), both on
- :mod:`pcbench.geometry` (cell geometries, projection);
- the private helpers ``pcbench/_*.py`` and :mod:`pcbench.errors`, shared by all.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
