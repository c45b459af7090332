"""Which samples each row of a table compares: the papers' protocol, or the halves of one file.

The papers compare the **whole** generated sample with the **whole** evaluation split of the
reference (jetnet's ``gen_metrics`` on the test split; the CaloChallenge's ``evaluate.py`` on the
Geant4 test file; the CaloClouds II evaluation on its test showers), and make their truth row from
a disjoint sample of the same data (the CaloChallenge's "Geant4" row: the training file against
the test file).  Metrics whose value depends on the sample sizes (FPD's finite-sample term, KPD,
W1, classifier AUCs, separation powers, PRDC) are only comparable at the same sizes, so a record
states which protocol made it and a leaderboard refuses to mix them.

- ``split`` (the papers' protocol): every generated object against the whole reference split;
  the truth row: ``min(N_generated, N_truth)`` objects of a disjoint split or file (a seeded
  choice), against the same whole reference split.
- ``halves`` (a user's single reference file): the reference is cut into disjoint halves A and B
  of ``n = min(N_generated, N_reference // 2)`` objects (a seeded permutation); the first n
  generated objects against A, and B against A.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import IncompatibleError

__all__ = ["Rows", "split_rows", "half_rows", "protocol_text", "rows_digest"]


def rows_digest(rows: np.ndarray) -> str:
    """md5 of a row-index array (which objects a sample used)."""
    return hashlib.md5(np.ascontiguousarray(rows, dtype=np.int64).tobytes(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Rows:
    """Row indices of one evaluation (each sorted, so files are read in order).

    ``gen``: generated rows of the model row; ``ref``: the reference rows both rows compare with;
    ``truth``: the truth sample's rows, in the reference itself (``halves``) or in the disjoint
    truth sample (``split``), which ``truth_from`` names.
    """

    gen: np.ndarray
    ref: np.ndarray
    truth: np.ndarray
    mode: str
    truth_from: str

    @property
    def n(self) -> int:
        """Generated objects compared."""
        return len(self.gen)

    def identity(self) -> dict[str, Any]:
        """What a stored truth row is keyed by about the samples: the protocol and the md5 of the
        reference and truth rows."""
        return {"protocol": self.protocol(), "rows": [rows_digest(self.ref), rows_digest(self.truth)]}

    def protocol(self) -> dict[str, Any]:
        """What a record stores (and a leaderboard compares) about the samples."""
        return {"mode": self.mode, "generated_rows": int(len(self.gen)), "reference_rows": int(len(self.ref)),
                "truth_rows": int(len(self.truth)), "truth_sample": self.truth_from}


def _enough(n_gen: int, n_ref: int, n_truth: int, minimum: int, objects: str) -> None:
    if min(n_gen, n_ref, n_truth) < minimum:
        raise IncompatibleError(f"too few {objects} to evaluate: {n_gen} generated, {n_ref} reference and {n_truth} "
                                f"truth {objects}; each sample needs at least {minimum}")


def split_rows(n_gen: int, n_ref: int, n_truth: int, seed: int, truth_from: str, minimum: int = 10,
               objects: str = "objects") -> Rows:
    """The papers' protocol: all ``n_gen`` generated rows against all ``n_ref`` reference rows; the
    truth row takes ``min(n_gen, n_truth)`` rows of the disjoint truth sample (the first of
    ``default_rng(seed)``'s permutation, sorted)."""
    m = min(n_gen, n_truth)
    _enough(n_gen, n_ref, m, minimum, objects)
    truth = np.sort(np.random.default_rng(seed).permutation(n_truth)[:m])
    return Rows(np.arange(n_gen), np.arange(n_ref), truth, "split", truth_from)


def half_rows(n_gen: int, n_ref: int, seed: int, minimum: int = 10, objects: str = "objects") -> Rows:
    """One reference file: n = min(n_gen, n_ref // 2); the first n generated rows; halves A and B
    of the reference from ``default_rng(seed)``'s permutation (A the reference rows, B the truth)."""
    n = min(n_gen, n_ref // 2)
    if n < minimum:
        raise IncompatibleError(f"too few {objects} to evaluate: {n_gen} generated and {n_ref} reference {objects}; "
                                f"the suite needs at least {minimum} generated and {2 * minimum} reference {objects}")
    perm = np.random.default_rng(seed).permutation(n_ref)
    return Rows(np.arange(n), np.sort(perm[:n]), np.sort(perm[n:2 * n]), "halves", "half B of the reference file")


def protocol_text(protocol: dict[str, Any] | None, objects: str) -> str:
    """One sentence for footers and reports: what the model rows and the truth row compare."""
    if not protocol:
        return ("Protocol not recorded (a record made before pcbench recorded it): each model's first N generated "
                f"{objects} against half A of the reference, the truth row half B against half A.")
    g, r, t = (f"{protocol[k]:,}" for k in ("generated_rows", "reference_rows", "truth_rows"))
    if protocol["mode"] == "halves":
        return (f"Protocol: halves of one reference file (not the papers' protocol): each model's first {g} generated "
                f"{objects} against half A ({r} {objects}) of the reference; the truth row: half B ({t}) against half "
                f"A. Size-dependent metrics (FPD, KPD, W1, AUCs, separation powers, PRDC) differ from published ones "
                "at other sizes; `--truth FILE` (a disjoint sample) gives the papers' protocol.")
    short = "" if protocol["truth_rows"] >= protocol["generated_rows"] else \
        f" (fewer than generated: the truth sample holds only {t})"
    return (f"Protocol: the papers' (each model's {g} generated {objects} against the whole reference split, {r} "
            f"{objects}; the truth row: {t} {objects} of {protocol['truth_sample']}, disjoint from the reference, "
            f"against the same reference{short}).")
