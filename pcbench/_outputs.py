"""Check output locations before the work starts, so that a long run never fails at its last write.

``output_dir`` makes a result folder (with its parents, as ``mkdir -p``) and proves it writable;
``output_file`` requires the file's folder to exist and be writable.  Both raise
:class:`~pcbench.errors.OutputError` naming the option, the path and the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError

__all__ = ["output_dir", "output_file"]


def _probe(folder: Path, option: str, shown: Path) -> None:
    """Create and remove a temporary file in ``folder`` (the only sure test of writability)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".pcbench-probe.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"{option} {shown}: cannot write in {folder} ({exc.strerror or exc})") from None


def output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a writable folder, created with its parents if needed."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file, expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot create the folder ({exc.strerror or exc})") from None
    _probe(path, option, path)
    return path


def output_file(path: str | os.PathLike[str], option: str = "-o") -> Path:
    """``path`` as a file that can be written: its folder exists and is writable, and it is no folder."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder, expected a file name")
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise OutputError(f"{option} {path}: the folder {parent} {what}; create it first")
    _probe(parent, option, path)
    return path
