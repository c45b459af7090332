"""Check output locations before the work starts, so that a long run never fails at its last write.

:func:`folder_problem` says why files cannot be written into a folder; ``output_dir`` makes a
result folder (with its parents, as ``mkdir -p``) and proves it writable; ``output_file`` requires
the file's folder to exist and be writable.  The last two raise
:class:`~pcbench.errors.OutputError` (exit 2) naming the option, the path and the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError

__all__ = ["folder_problem", "output_dir", "output_file"]


def folder_problem(folder: str | os.PathLike[str], create: bool, probe: bool = True) -> str | None:
    """Why files cannot be written into ``folder`` (or, without ``probe``, why it cannot be
    used), or None if they can.

    With ``create`` the folder itself may be missing (it will be made) but its parent must exist;
    otherwise the folder must exist.  With ``probe`` writability is tested by creating a temporary
    file, as the run will (this also holds for root and for read-only file systems).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not folder.exists():
        if not create:
            return f"the folder {folder} does not exist; create it first"
        if not folder.parent.is_dir():
            what = "is a file, not a folder" if folder.parent.exists() else "does not exist"
            return f"the parent folder {folder.parent} of {folder} {what}"
        folder = folder.parent
    if not probe:
        return None
    try:
        fd, name = tempfile.mkstemp(prefix=".pcbench-write-test.", dir=folder)
    except OSError as exc:
        return f"the folder {folder} is not writable ({exc.strerror})"
    os.close(fd)
    os.unlink(name)
    return None


def output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a writable folder, created with its parents if needed."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file, expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot create the folder ({exc.strerror or exc})") from None
    problem = folder_problem(path, create=False)
    if problem:
        raise OutputError(f"{option} {path}: {problem}")
    return path


def output_file(path: str | os.PathLike[str], option: str = "-o") -> Path:
    """``path`` as a file that can be written: its folder exists and is writable, and it is no folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder, expected a file name")
    problem = folder_problem(path.parent, create=False)
    if problem:
        raise OutputError(f"{option} {path}: {problem}")
    return path
