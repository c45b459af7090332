"""Leaderboard files on disk: reading result records for a build, and writing each table's
Markdown and CSV as a pair that is never left half old, half new.

Each Markdown table ends with the md5 of the CSV written with it.  Both files are rendered and
written to temporary files before either is renamed (:func:`pcbench._io.atomic_write_texts`); a
process killed between the two renames leaves a pair whose md5 disagrees, which the next build
finds: it rewrites (repairs) the pairs it builds and refuses, naming them, the others.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_texts, remove_stale_temps
from ..errors import FormatError, PcbenchError
from ..evaluate.result import EvaluationResult
from .tables import Table, table_stem, to_csv, to_markdown

__all__ = ["TableFilesError", "WriteReport", "read_records", "pair_problem", "write_table", "write_tables",
           "csv_md5_line"]

_MD5_LINE = re.compile(r"^Table data: `(?P<name>[^`]+)`, md5 (?P<md5>[0-9a-f]{32})\.$", re.MULTILINE)


class TableFilesError(PcbenchError):
    """A table's Markdown and CSV disagree (an interrupted build) and this build does not remake them."""


@dataclass
class WriteReport:
    """What :func:`write_tables` wrote and cleaned up."""

    written: list[tuple[Path, Path]]
    repaired: list[str]
    removed_temps: list[Path]


def csv_md5_line(csv_name: str, csv_text: str) -> str:
    """The Markdown footer line that ties a table to its CSV."""
    md5 = hashlib.md5(csv_text.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"Table data: `{csv_name}`, md5 {md5}."


def read_records(paths: Iterable[Path]) -> list[EvaluationResult]:
    """The records of JSON files and folders (their ``*.json``), checked for a build.

    Raises :class:`FormatError` (one line) for a folder without records, a file that is not a
    complete record, or records without any metric (naming every such file).
    """
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if not found:
                raise FormatError(f"{p}: no result records (*.json) in this folder")
            files += found
        else:
            files.append(p)
    records = [EvaluationResult.read(f) for f in files]
    empty = [str(f) for f, r in zip(files, records) if not r.metrics]
    if empty:
        raise FormatError(f"record(s) without any metric: {', '.join(empty)}; a table needs metric values: "
                          "re-run `pcbench evaluate` for them (without a --metrics filter, or with known names)")
    return records


def pair_problem(md_path: Path, csv_path: Path) -> str | None:
    """Why a table's Markdown and CSV do not belong together, or None if they do (or cannot tell).

    Only a Markdown table with the md5 line is judged (other Markdown files, and tables written
    before the line existed, pass).  The Markdown is renamed into place before the CSV, so an
    interrupted first build leaves a Markdown without its CSV, and a later one a stale CSV.
    """
    if not md_path.is_file():
        return None
    m = _MD5_LINE.search(md_path.read_text(encoding="utf-8", errors="replace"))
    if m is None:
        return None
    if not csv_path.is_file():
        return f"{md_path} has no {csv_path.name} beside it (an interrupted build)"
    if m["md5"] != hashlib.md5(csv_path.read_bytes(), usedforsecurity=False).hexdigest():
        return f"{md_path} and {csv_path} disagree (the Markdown was written with another CSV: an interrupted build)"
    return None


def _pairs(out: Path) -> set[str]:
    return {p.stem for p in out.glob("*.md") if not p.name.startswith(".")} if out.is_dir() else set()


def write_tables(tables: list[Table], out_dir: str | os.PathLike[str]) -> WriteReport:
    """Write ``<benchmark>.md`` and ``<benchmark>.csv`` of every table, all or none.

    First removes the temporary files of killed writes in ``out_dir``; refuses with
    :class:`TableFilesError`, before writing anything, if a pair this build does not remake
    disagrees; then renders every table and writes all files, renaming only when all are written.
    """
    out = Path(out_dir)
    removed = remove_stale_temps(out) if out.is_dir() else []
    stems = {table_stem(t) for t in tables}
    problems = {s: pair_problem(out / f"{s}.md", out / f"{s}.csv") for s in _pairs(out)}
    others = [p for s, p in sorted(problems.items()) if p and s not in stems]
    if others:
        more = f" ({len(others) - 1} more broken table(s))" if len(others) > 1 else ""
        raise TableFilesError(f"{others[0]}; rebuild that table from its records (`pcbench leaderboard build "
                              f"RECORDS --out {out}`) or delete both files{more}")
    files: dict[Path, str] = {}
    written = []
    for table in tables:
        stem = table_stem(table)
        csv_text = to_csv(table)
        md_path, csv_path = out / f"{stem}.md", out / f"{stem}.csv"
        files[csv_path] = csv_text
        files[md_path] = to_markdown(table, data_line=csv_md5_line(csv_path.name, csv_text))
        written.append((md_path, csv_path))
    atomic_write_texts(files)  # renamed last to first: each Markdown before its CSV
    return WriteReport(written, sorted(p for s, p in problems.items() if p and s in stems), removed)


def write_table(table: Table, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write one table's pair (:func:`write_tables`); returns (Markdown, CSV) paths."""
    [pair] = write_tables([table], out_dir).written
    return pair
