"""Verified downloads into the cache: resume, checksums, retries, locks and atomic renames.

Every file goes to ``<dest>.part`` first; a cut transfer resumes with an HTTP ``Range`` request;
the complete file is verified (md5) before an atomic rename puts it in place, so a failed or
corrupt download never leaves a file in the cache.  A lock file serialises concurrent fetches of
one file (across processes).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from filelock import FileLock

from .._io import file_md5
from ..errors import ChecksumError, DataUnavailableError, FetchError
from .cache import Cache
from .registry import DatasetEntry, FileEntry, Registry, default_registry

__all__ = ["FetchOptions", "fetch", "fetch_file", "file_url", "zenodo_checksums"]

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
    """

    mirror: str | None = None
    retries: int = 4
    timeout: float = 30.0
    backoff: float = 0.5
    chunk_bytes: int = 1 << 20
    lock_timeout: float = 6 * 3600.0


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


def _expected_md5(entry: DatasetEntry, f: FileEntry, cache: Cache, opts: FetchOptions) -> tuple[str | None, str]:
    """The md5 to verify against and where it came from (registry, pin, Zenodo API or none)."""
    if f.md5:
        return f.md5, "registry"
    pin = cache.pinned(entry, f)
    if pin:
        return pin["md5"], "pinned"
    if entry.source.get("type") == "zenodo" and opts.mirror is None:
        try:
            sums = zenodo_checksums(entry.source["record"], timeout=min(opts.timeout, 10.0),
                                    api=entry.source.get("api", _ZENODO_API))
        except (requests.RequestException, ValueError, KeyError):
            return None, "none"
        if f.name in sums:
            return sums[f.name][0], "zenodo-api"
    return None, "none"


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

    Raises:
        DataUnavailableError: the host cannot be reached (the message names the URL and, where
            pcbench has one, the command that makes the data offline).
        FetchError: HTTP errors, time-outs after all retries.
        ChecksumError: the complete download does not match the expected md5; nothing is left
            in the cache.
    """
    cache = cache or Cache()
    dest = cache.path(entry, f)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with FileLock(str(dest) + ".lock", timeout=opts.lock_timeout):
        md5, origin = _expected_md5(entry, f, cache, opts)
        if dest.is_file():
            seen = file_md5(dest)
            if md5 is None or seen == md5:
                if md5 is None:
                    cache.pin(entry, f, seen, dest.stat().st_size, "first-use")
                return dest
            dest.unlink()  # a corrupt cached copy is replaced, never used
        url = file_url(f, opts.mirror)
        if "://" not in url:  # a mirror that is a local folder
            _copy_local(Path(url), part)
        else:
            _download(url, part, opts, on_progress, entry, f)
        seen = file_md5(part)
        size = part.stat().st_size
        if md5 is not None and seen != md5:
            part.unlink()
            raise ChecksumError(
                f"checksum mismatch for {url}: md5 {seen}, expected {md5} ({origin}); "
                "the download was discarded and nothing was written to the cache"
            )
        if f.size is not None and size != f.size:
            part.unlink()
            raise ChecksumError(f"size mismatch for {url}: {size} bytes, expected {f.size}; download discarded")
        part.replace(dest)
        if f.md5 is None and origin != "pinned":
            cache.pin(entry, f, seen, size, "zenodo-api" if origin == "zenodo-api" else "first-download")
        return dest


def fetch(specs: Sequence[str], cache: Cache | None = None, opts: FetchOptions = FetchOptions(),
          registry: Registry | None = None, progress: bool = True) -> list[Path]:
    """Fetch every file named by ``specs`` (``NAME`` or ``NAME:KEY``) with a rich progress bar.

    Returns the cached paths in the order of ``specs`` and of the registry's members.
    """
    registry = registry or default_registry()
    cache = cache or Cache()
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
