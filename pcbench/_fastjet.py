"""FastJet, imported once with its start-up banner kept off the terminal (it is cited in the docs).

FastJet (Cacciari, Salam, Soyez, EPJC 72 (2012) 1896) prints a banner from C++ the first time a
clustering runs in a process; pcbench runs that first clustering with file descriptor 1 pointed
at /dev/null so that progress bars and tables stay readable.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from types import ModuleType

__all__ = ["fastjet"]


@lru_cache(maxsize=1)
def fastjet() -> ModuleType:
    """The ``fastjet`` module, its banner already printed (to /dev/null)."""
    import fastjet as fj

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            fj.ClusterSequence([fj.PseudoJet(1.0, 0.0, 0.0, 1.0)], fj.JetDefinition(fj.antikt_algorithm, 0.4))
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return fj
