"""Atomic file writes and checksums shared by every module that writes or verifies files.

A temporary file is named ``.<dest name>.pcbench-<pid>@<host>.<random><suffix>.tmp`` beside its
destination.  A run killed with SIGKILL cannot remove it; the next atomic write into the same
folder on the same host removes every such file whose process is gone (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_texts", "file_md5", "remove_stale_temps"]

_TEMP = re.compile(r"^\..+\.pcbench-(?P<pid>\d+)@(?P<host>[0-9a-f]{8})\.[^/]*\.tmp$")


def _host() -> str:
    return hashlib.md5(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that killed pcbench writes left in ``folder``; return them.

    Only files of :func:`atomic_path`'s pattern made on this host by a process that no longer
    exists are removed: a concurrent writer's temporary file is left alone.
    """
    removed = []
    host = _host()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = _TEMP.match(entry.name)
            if m and m["host"] == host and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds.

    A reader therefore sees either the old file or the complete new one, never a half-written
    file: on an exception the temporary file is removed and ``dest`` is left untouched; after a
    SIGKILL the next atomic write into the folder removes it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.pcbench-{os.getpid()}@{_host()}.", suffix=suffix + ".tmp",
                               dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_texts(files: dict[Path, str]) -> None:
    """Write several files (UTF-8) so that none is replaced before all are complete.

    Every file is written to its temporary path first; only then are they renamed, one after the
    other, from the last given to the first.  An exception before the renames leaves every
    destination untouched; a SIGKILL between two renames can leave some new and some old, which readers must detect (the leaderboard's
    Markdown records the md5 of its CSV for this).
    """
    with contextlib.ExitStack() as stack:
        temps = {dest: stack.enter_context(atomic_path(dest)) for dest in files}
        for dest, tmp in temps.items():
            tmp.write_text(files[dest], encoding="utf-8")
    # ExitStack exits in reverse order: each atomic_path renames its file only after all were written


def file_md5(path: str | os.PathLike[str], chunk_bytes: int = 1 << 22) -> str:
    """Hex md5 digest of a file, read in chunks of ``chunk_bytes`` (memory stays bounded)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()
