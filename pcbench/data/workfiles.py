"""Run locks that leave no file behind, and the sweep of what killed runs left.

A command that writes a file (``pcbench fetch`` into the cache, ``pcbench simulate`` to ``-o``)
holds :func:`run_lock` on it for the whole run: an exclusive ``flock`` on the hidden file
``.<name>.lock`` beside it.  The lock file is removed, while still held, when the run ends; a
run killed with ``kill -9`` leaves it, and the next run takes it over (the kernel dropped the
lock with the process) and removes it.  A waiter that locked a lock file another run had just
removed sees that the name no longer points at its file and tries again, so two runs never
hold the lock at once.  Under the lock, :func:`sweep` removes the hidden temporary files
(``.<name>.*.tmp``, from :func:`pcbench._io.atomic_path`) that a killed run left.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import PcbenchError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: filelock's native lock, lock file kept
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLockedError", "run_lock", "lock_path", "sweep", "remove_if_unlocked"]


class RunLockedError(PcbenchError):
    """Another pcbench run holds the lock of the file this run would write."""


def lock_path(target: str | os.PathLike[str]) -> Path:
    """The hidden lock file of ``target``: ``.<name>.lock`` in the same folder."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


def _holder(lock: Path) -> str:
    """What the holder wrote into the lock file ('pid N, since HH:MM:SS'), or ''."""
    try:
        text = lock.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""


def _try_flock(lock: Path) -> int | None:
    """An fd holding the lock on ``lock``, or None if another open file holds it; retries when the
    file it locked was removed or replaced meanwhile (its name then points elsewhere)."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                return None
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # a finished run removed (or a new run re-created) the file: lock the current one


def _unwritable(target: Path, exc: OSError) -> PcbenchError:
    folder = target.parent
    if not folder.exists():
        return PcbenchError(f"cannot write {target}: the folder {folder} does not exist")
    return PcbenchError(f"cannot write {target}: the folder {folder} is not writable ({exc.strerror})")


@contextlib.contextmanager
def run_lock(target: str | os.PathLike[str], timeout: float = 0.0, poll: float = 0.05,
             hint: str = "wait for it to finish") -> Iterator[Path]:
    """Hold the exclusive run lock of ``target`` (see the module docstring); yields the lock file.

    Args:
        target: the file the run writes (its folder must exist).
        timeout: seconds to wait for another run; 0 refuses at once.
        hint: what the refusal message tells the user to do.

    Raises:
        RunLockedError: another run held the lock for ``timeout`` seconds; names ``target``.
        PcbenchError: the folder of ``target`` does not exist or is not writable.
    """
    target = Path(target)
    lock = lock_path(target)
    if fcntl is None:  # pragma: no cover
        from filelock import FileLock, Timeout

        try:
            with FileLock(str(lock), timeout=timeout):
                yield lock
        except Timeout:
            raise RunLockedError(f"{target}: another pcbench run holds it; {hint}") from None
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = _try_flock(lock)
        except OSError as exc:
            raise _unwritable(target, exc) from None
        if fd is not None:
            break
        if time.monotonic() >= deadline:
            raise RunLockedError(f"{target}: another pcbench run holds it{_holder(lock)}; {hint}")
        time.sleep(poll)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}".encode())
        yield lock
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()  # still held: a waiter on this file sees it gone and locks the new one
        os.close(fd)


def sweep(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the hidden temporary files ``.<name>.*.tmp`` of ``target`` that killed runs left.

    Call it only while holding :func:`run_lock` on ``target`` (no live run writes them then).
    Returns the files removed.
    """
    target = Path(target)
    pattern = str(target.parent / f".{glob.escape(target.name)}.*.tmp")
    removed = []
    for name in glob.glob(pattern):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
            removed.append(Path(name))
    return removed


def remove_if_unlocked(lock: str | os.PathLike[str]) -> bool:
    """Remove a lock file nobody holds (one an older pcbench left); True if removed."""
    lock = Path(lock)
    if fcntl is None or not lock.is_file():  # pragma: no cover
        return False
    fd = _try_flock(lock)
    if fd is None:
        return False
    try:
        lock.unlink()
    finally:
        os.close(fd)
    return True
