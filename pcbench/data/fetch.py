"""Verified downloads into the cache: resume, checksums, retries, locks and atomic renames.

Every file goes to ``<dest>.<url hash>.part`` first; a cut transfer resumes with an HTTP ``Range``
request to the same URL (never to another host: bytes of two sources are never joined);
the complete file is verified before an atomic rename puts it in place, so a failed, truncated or
corrupt download never leaves a file in the cache: its md5 against the published one (registry,
else Zenodo's records API) or the one pinned on the first download; its size against the
registered size; and, when no md5 was published, its layout (``integrity.layout_problem``).
A run lock (``workfiles.run_lock``) serialises concurrent fetches of one file across processes;
under it, the temporary files and empty ``.part`` files of killed runs are removed.
"""

from __future__ import annotations

import glob
import hashlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import requests

from .._io import file_md5
from ..errors import ChecksumError, DataUnavailableError, FetchError
from .cache import Cache
from .integrity import layout_problem
from .registry import DatasetEntry, FileEntry, Registry, default_registry
from .workfiles import remove_if_unlocked, run_lock, sweep

__all__ = ["FetchOptions", "fetch", "fetch_file", "fetch_jobs", "file_url", "zenodo_checksums"]

#: Signature of a progress callback: (file name, bytes done, total bytes or None).
ProgressCallback = Callable[[str, int, "int | None"], None]

_ZENODO_API = "https://zenodo.org/api/records/"


@dataclass(frozen=True)
class FetchOptions:
    """How to download.

    Attributes:
        mirror: base URL of another host serving the same file names (``MIRROR/<file name>``).
        retries: attempts after the first for time-outs and cut connections.
        timeout: seconds to wait for a connection or for the next bytes.
        backoff: first wait between attempts in seconds, doubled after each failure.
        chunk_bytes: bytes read per chunk while streaming.
        lock_timeout: seconds to wait for another process fetching the same file.
        refresh: download again even if a copy is cached, and replace the md5 pinned for a file
            without a published checksum by the new download's (after the same checks).
    """

    mirror: str | None = None
    retries: int = 4
    timeout: float = 30.0
    backoff: float = 0.5
    chunk_bytes: int = 1 << 20
    lock_timeout: float = 6 * 3600.0
    refresh: bool = False


def file_url(f: FileEntry, mirror: str | None) -> str:
    """The URL to download ``f`` from: its own, or ``mirror/<file name>``."""
    return f"{mirror.rstrip('/')}/{f.name}" if mirror else f.url


def _unreachable(exc: requests.ConnectionError) -> bool:
    """True for errors that say the host cannot be reached at all (no point in retrying)."""
    text = repr(exc)
    return any(s in text for s in ("NameResolutionError", "Failed to resolve", "Connection refused",
                                   "Network is unreachable", "No route to host"))


def _offline_message(url: str, entry: DatasetEntry, f: FileEntry, exc: Exception) -> str:
    msg = f"cannot reach {url} ({type(exc).__name__}: {exc})."
    hint = entry.offline_hint(f.key)
    if hint:
        msg += f" pcbench can make the offline equivalent of {entry.name}:{f.key} with: {hint}"
    else:
        msg += " Fetch it on a machine with network access and copy it to the cache, or pass --mirror URL."
    return msg


def zenodo_checksums(record: int | str, timeout: float = 10.0, api: str = _ZENODO_API) -> dict[str, tuple[str, int]]:
    """Ask Zenodo's records API for ``{file name: (md5, size in bytes)}`` of a record.

    Raises:
        requests.RequestException: when the API cannot be reached or answers with an error.
    """
    resp = requests.get(f"{api.rstrip('/')}/{record}", timeout=timeout)
    resp.raise_for_status()
    out: dict[str, tuple[str, int]] = {}
    for item in resp.json().get("files", []):
        algo, _, digest = str(item.get("checksum", "")).partition(":")
        if algo == "md5" and digest:
            out[item["key"]] = (digest, int(item.get("size", -1)))
    return out


def _expected(entry: DatasetEntry, f: FileEntry, cache: Cache, opts: FetchOptions
              ) -> tuple[str | None, str, int | None]:
    """The md5 to verify against, where it came from (registry, pinned, zenodo-api or none), and
    the expected size in bytes (registry, else Zenodo's, else None).

    A pin is ignored with ``opts.refresh``, and when its size contradicts the registered size
    (a truncated file pinned by an older pcbench): the next complete download replaces it.
    """
    if f.md5:
        return f.md5, "registry", f.size
    pin = cache.pinned(entry, f)
    if pin and not opts.refresh and (f.size is None or pin.get("size") == f.size):
        return pin["md5"], "pinned", f.size
    if entry.source.get("type") == "zenodo" and opts.mirror is None:
        try:
            sums = zenodo_checksums(entry.source["record"], timeout=min(opts.timeout, 10.0),
                                    api=entry.source.get("api", _ZENODO_API))
        except (requests.RequestException, ValueError, KeyError):
            sums = {}
        if f.name in sums:
            md5, size = sums[f.name]
            return md5, "zenodo-api", f.size if f.size is not None else (size if size >= 0 else None)
    return None, "none", f.size


def _problem(path: Path, seen: str, entry: DatasetEntry, f: FileEntry, md5: str | None, origin: str,
             size: int | None) -> tuple[str, str] | None:
    """Why ``path`` (of md5 ``seen``) may not be (or stay) the cached copy of ``f``, as (the check
    that failed: size, md5 or layout; the reason), or None if it may."""
    have = path.stat().st_size
    if size is not None and have != size:
        source = "registered size" if f.size is not None else "size from Zenodo's records API"
        return "size", f"size mismatch: {have:,} bytes, expected {size:,} ({source}): incomplete, or not the published file"
    if md5 is not None and seen != md5:
        return "md5", f"checksum mismatch: md5 {seen}, expected {md5} ({origin})"
    if not f.md5:
        problem = layout_problem(path, entry)
        if problem:
            return "layout", f"not a complete {entry.format} file for {entry.name}: {problem}"
    return None


#: The error a failed check of a download raises.
_ERRORS: dict[str, type[FetchError]] = {"size": ChecksumError, "md5": ChecksumError, "layout": FetchError}


def _part_path(dest: Path, url: str) -> Path:
    """Where the download of ``dest`` from ``url`` is written: one partial file per source URL."""
    return dest.with_name(f"{dest.name}.{hashlib.sha1(url.encode()).hexdigest()[:8]}.part")


def _sweep(dest: Path, part: Path) -> None:
    """Remove what killed or failed fetches of ``dest`` left: hidden temporary files, an empty
    ``part``, partial files from other URLs (they cannot be resumed from this one) and an older
    pcbench's unheld lock file (call under the run lock of ``dest``)."""
    sweep(dest)
    name = glob.escape(dest.name)
    for other in (*dest.parent.glob(f"{name}.part"), *dest.parent.glob(f"{name}.*.part")):
        if other != part or other.stat().st_size == 0:
            other.unlink(missing_ok=True)
    remove_if_unlocked(dest.with_name(dest.name + ".lock"))


def _download(url: str, part: Path, opts: FetchOptions, on_progress: ProgressCallback | None,
              entry: DatasetEntry, f: FileEntry) -> None:
    """Stream ``url`` into ``part``, resuming from its current size; retries with back-off."""
    attempt = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=opts.timeout) as resp:
                if resp.status_code == 416 and offset:
                    part.unlink()  # the partial file is longer than the remote one: start again
                    continue
                if resp.status_code == 404:
                    raise FetchError(f"HTTP 404 Not Found: {url} (is the file name right for this host?)")
                if resp.status_code >= 400:
                    raise FetchError(f"HTTP {resp.status_code} {resp.reason}: {url}")
                if offset and resp.status_code == 206:
                    start = int(resp.headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
                    if start != offset:
                        raise FetchError(f"{url}: server resumed at byte {start}, expected {offset}")
                    mode, done = "ab", offset
                else:  # 200: the server ignored the Range header; start from zero
                    mode, done = "wb", 0
                length = resp.headers.get("Content-Length")
                total = done + int(length) if length is not None else f.size
                with open(part, mode) as fh:
                    if on_progress:
                        on_progress(f.name, done, total)
                    for block in resp.iter_content(chunk_size=opts.chunk_bytes):
                        fh.write(block)
                        done += len(block)
                        if on_progress:
                            on_progress(f.name, done, total)
                if total is not None and done < total:
                    raise requests.ConnectionError(f"connection closed at byte {done} of {total}")
                return
        except requests.ConnectionError as exc:
            if _unreachable(exc) and not part.exists():
                raise DataUnavailableError(_offline_message(url, entry, f, exc)) from exc
            error: Exception = exc
        except requests.Timeout as exc:
            error = exc
        except requests.RequestException as exc:  # e.g. ChunkedEncodingError on a cut stream
            error = exc
        if attempt >= opts.retries:
            raise FetchError(f"giving up on {url} after {attempt + 1} attempts: {type(error).__name__}: {error}")
        time.sleep(opts.backoff * 2**attempt)
        attempt += 1


def _copy_local(src: Path, part: Path) -> None:
    """Copy a file of a local mirror folder into ``part`` (verified by the caller like a download)."""
    if not src.is_file():
        raise FetchError(f"{src}: no such file in the local mirror")
    shutil.copyfile(src, part)


def fetch_file(entry: DatasetEntry, f: FileEntry, cache: Cache | None = None,
               opts: FetchOptions = FetchOptions(), on_progress: ProgressCallback | None = None) -> Path:
    """Download one file into the cache (or verify the cached copy) and return its path.

    A cached copy is kept when it passes the checks a download must pass (``_problem``), else it
    is replaced; with ``opts.refresh`` it is downloaded again, and the old copy stays in place
    until the new one has passed every check.

    Raises:
        DataUnavailableError: the host cannot be reached (the message names the URL and, where
            pcbench has one, the command that makes the data offline).
        FetchError: HTTP errors, time-outs after all retries; a download that is not a complete
            file of the data set's layout.
        ChecksumError: the complete download does not match the expected md5 or size.
        In every case nothing new is left in the cache.
    """
    cache = cache or Cache()
    dest = cache.path(entry, f)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot make the cache folder {dest.parent} ({exc.strerror}); pass --cache-dir DIR") from None
    url = file_url(f, opts.mirror)
    part = _part_path(dest, url)
    with run_lock(dest, timeout=opts.lock_timeout, hint="it is being fetched by another process"):
        _sweep(dest, part)
        cache.sweep()
        md5, origin, size = _expected(entry, f, cache, opts)
        if dest.is_file() and not opts.refresh:
            seen = file_md5(dest)
            problem = _problem(dest, seen, entry, f, md5, origin, size)
            if problem is None:
                if md5 is None:
                    cache.pin(entry, f, seen, dest.stat().st_size, "first-use")
                return dest
            if origin == "pinned" and seen == md5:
                # the copy has the pinned md5 yet fails the other checks: an older pcbench pinned a
                # truncated download; the next complete download replaces the pin
                md5, origin, size = _expected(entry, f, cache, replace(opts, refresh=True))
            dest.unlink()  # a corrupt or truncated cached copy is replaced, never used
        if opts.refresh:
            part.unlink(missing_ok=True)  # a refresh starts from zero, not from an old partial file
        if "://" not in url:  # a mirror that is a local folder
            _copy_local(Path(url), part)
        else:
            _download(url, part, opts, on_progress, entry, f)
        seen, got = file_md5(part), part.stat().st_size
        problem = _problem(part, seen, entry, f, md5, origin, size)
        if problem:
            part.unlink()
            raise _ERRORS[problem[0]](f"{url}: {problem[1]}; the download was discarded and nothing was written "
                                      "to the cache")
        part.replace(dest)
        if f.md5 is None and origin != "pinned":
            cache.pin(entry, f, seen, got, "zenodo-api" if origin == "zenodo-api" else "first-download")
        return dest


def fetch_jobs(specs: Sequence[str], registry: Registry | None = None) -> list[tuple[DatasetEntry, FileEntry]]:
    """The (data set, file) pairs that ``specs`` (``NAME`` or ``NAME:KEY``) name, in order.

    Raises:
        RegistryError: an unknown name or member.
        DataUnavailableError: a data set that cannot be fetched automatically (says what can).
    """
    registry = registry or default_registry()
    jobs: list[tuple[DatasetEntry, FileEntry]] = []
    for spec in specs:
        entry, files = registry.resolve(spec)
        if not entry.downloadable:
            note = entry.source.get("note", "")
            page = entry.source.get("landing_page", "")
            hint = entry.offline_hint()
            raise DataUnavailableError(
                f"{entry.name} cannot be fetched automatically. {note} Landing page: {page}."
                + (f" Offline equivalent: {hint}" if hint else "")
            )
        jobs.extend((entry, f) for f in files)
    return jobs


def fetch(specs: Sequence[str], cache: Cache | None = None, opts: FetchOptions = FetchOptions(),
          registry: Registry | None = None, progress: bool = True) -> list[Path]:
    """Fetch every file named by ``specs`` (``NAME`` or ``NAME:KEY``) with a rich progress bar.

    Returns the cached paths in the order of ``specs`` and of the registry's members.
    """
    cache = cache or Cache()
    jobs = fetch_jobs(specs, registry)
    if not progress:
        return [fetch_file(e, f, cache, opts) for e, f in jobs]

    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    paths = []
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn()) as bar:
        for entry, f in jobs:
            task = bar.add_task(f"{entry.name}:{f.key}", total=f.size)

            def update(_name: str, done: int, total: int | None, task=task) -> None:
                bar.update(task, completed=done, total=total)

            paths.append(fetch_file(entry, f, cache, opts, on_progress=update))
            bar.update(task, completed=paths[-1].stat().st_size, total=paths[-1].stat().st_size)
    return paths
