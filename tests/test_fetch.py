"""pcbench fetch against a local HTTP server on 127.0.0.1: resume, checksums, errors, locks."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from cli_checks import assert_one_line_error, unwritable_folder
from factories import calochallenge_arrays, h5_bytes, jetnet_arrays
from pcbench.cli import cli, console
from pcbench.data import Cache, FetchOptions, Registry, fetch, load
from pcbench.data.registry import default_registry
from pcbench.errors import ChecksumError, DataUnavailableError, FetchError

FAST = FetchOptions(retries=2, timeout=5.0, backoff=0.01, chunk_bytes=4096)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def registry_for(tmp_path, base_url: str, files: dict[str, tuple[bytes, str | None]], source=None,
                 sizes: dict[str, int] | None = None) -> Registry:
    """A one-data-set registry file ('toy', kind jets) whose members are served at base_url;
    ``sizes`` registers members' sizes in bytes."""
    lines = ["schema: 1", "datasets:", "  toy:", "    title: toy", "    kind: jets", "    format: jetnet-hdf5",
             f"    source: {json.dumps(source or {'type': 'http'})}",
             "    split: {convention: jetnet, fractions: [0.7, 0.15, 0.15], seed: 42}",
             "    citation: none", "    licence: none",
             "    offline: 'pcbench simulate jetnet30 --jet-type {key}'", "    files:"]
    for key, (_, digest) in files.items():
        size = (sizes or {}).get(key, "null")
        lines.append(f"      {key}: {{name: {key}.hdf5, url: '{base_url}/{key}.hdf5', "
                     f"md5: {repr(digest) if digest else 'null'}, size: {size}, jet_type: {key}}}")
    path = tmp_path / "datasets.yaml"
    path.write_text("\n".join(lines) + "\n")
    return Registry.from_yaml(path)


@pytest.fixture
def jet_file() -> bytes:
    pf, jf = jetnet_arrays(n=100, seed=3)
    return h5_bytes(particle_features=pf, jet_features=jf)


def test_fetch_end_to_end_then_load_splits(tmp_path, file_server, jet_file):
    file_server.files["/g.hdf5"] = jet_file
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, md5(jet_file))})
    cache = Cache(tmp_path / "cache")
    [path] = fetch(["toy:g"], cache, FAST, reg, progress=False)
    assert path == tmp_path / "cache" / "toy" / "g.hdf5"
    assert path.read_bytes() == jet_file
    sizes = {s: len(load("toy:g", s, cache, reg)) for s in ("train", "valid", "test", "all")}
    assert sizes == {"train": 70, "valid": 15, "test": 15, "all": 100}
    # a second fetch verifies the cached copy and downloads nothing
    fetch(["toy"], cache, FAST, reg, progress=False)
    assert file_server.hits("/g.hdf5") == 1


def test_resume_after_cut_connection(tmp_path, file_server, jet_file):
    file_server.files["/g.hdf5"] = jet_file
    file_server.cut_after["/g.hdf5"] = len(jet_file) // 3
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, md5(jet_file))})
    [path] = fetch(["toy:g"], Cache(tmp_path / "c"), FAST, reg, progress=False)
    assert path.read_bytes() == jet_file
    ranges = [r for p, r in file_server.requests if p == "/g.hdf5"]
    assert ranges[0] is None
    # resumed from the bytes written before the cut (whole chunks of 4096), not from zero
    start = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= len(jet_file) // 3 and start % 4096 == 0


def test_server_ignoring_range_restarts_cleanly(tmp_path, file_server, jet_file):
    file_server.files["/g.hdf5"] = jet_file
    file_server.cut_after["/g.hdf5"] = 1000
    file_server.honour_range = False
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, md5(jet_file))})
    [path] = fetch(["toy:g"], Cache(tmp_path / "c"), FAST, reg, progress=False)
    assert path.read_bytes() == jet_file


def test_checksum_mismatch_leaves_nothing(tmp_path, file_server, jet_file):
    file_server.files["/g.hdf5"] = jet_file
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, "0" * 32)})
    cache = Cache(tmp_path / "c")
    with pytest.raises(ChecksumError, match="checksum mismatch.*nothing was written"):
        fetch(["toy:g"], cache, FAST, reg, progress=False)
    leftovers = [p.name for p in (tmp_path / "c" / "toy").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_404_is_a_clear_error(tmp_path, file_server):
    reg = registry_for(tmp_path, file_server.url, {"g": (b"", None)})
    with pytest.raises(FetchError, match=r"404 Not Found: http://127\.0\.0\.1:\d+/g\.hdf5"):
        fetch(["toy:g"], Cache(tmp_path / "c"), FAST, reg, progress=False)


def test_timeout_gives_up_after_retries(tmp_path, file_server, jet_file):
    file_server.files["/g.hdf5"] = jet_file
    file_server.delay["/g.hdf5"] = 1.5
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, None)})
    opts = FetchOptions(retries=1, timeout=0.3, backoff=0.01)
    with pytest.raises(FetchError, match=r"giving up on .*/g\.hdf5 after 2 attempts: .*Timeout"):
        fetch(["toy:g"], Cache(tmp_path / "c"), opts, reg, progress=False)
    assert file_server.hits("/g.hdf5") == 2


def test_unreachable_host_fails_fast_with_offline_hint(tmp_path):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reg = registry_for(tmp_path, f"http://127.0.0.1:{port}", {"q": (b"", None)})
    t0 = time.perf_counter()
    with pytest.raises(DataUnavailableError) as err:
        fetch(["toy:q"], Cache(tmp_path / "c"), FetchOptions(retries=4, backoff=1.0), reg, progress=False)
    assert time.perf_counter() - t0 < 1.0  # no retries, no back-off for an unreachable host
    assert f"http://127.0.0.1:{port}/q.hdf5" in str(err.value)
    assert "pcbench simulate jetnet30 --jet-type q" in str(err.value)


def test_mirror_replaces_the_host(tmp_path, file_server, jet_file):
    file_server.files["/mirror/g.hdf5"] = jet_file
    reg = registry_for(tmp_path, "http://127.0.0.1:9", {"g": (jet_file, md5(jet_file))})
    opts = FetchOptions(mirror=file_server.url + "/mirror/", retries=0)
    [path] = fetch(["toy:g"], Cache(tmp_path / "c"), opts, reg, progress=False)
    assert path.read_bytes() == jet_file


def test_concurrent_fetches_of_one_file(tmp_path, file_server, jet_file):
    file_server.files["/g.hdf5"] = jet_file
    file_server.delay["/g.hdf5"] = 0.3  # both fetches start while the first is still downloading
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, md5(jet_file))})
    cache = Cache(tmp_path / "c")
    results, errors = [], []

    def run():
        try:
            results.extend(fetch(["toy:g"], cache, FAST, reg, progress=False))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert results[0].read_bytes() == jet_file
    assert file_server.hits("/g.hdf5") == 1  # the second waited for the lock and found the file


def test_unknown_checksum_is_pinned_then_enforced(tmp_path, file_server, jet_file):
    file_server.files["/g.hdf5"] = jet_file
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, None)})
    cache = Cache(tmp_path / "c")
    [path] = fetch(["toy:g"], cache, FAST, reg, progress=False)
    pin = cache.pinned(reg.get("toy"), reg.get("toy").file("g"))
    assert pin["md5"] == md5(jet_file) and pin["size"] == len(jet_file) and pin["source"] == "first-download"
    # the cached copy is corrupted: the next fetch notices and downloads it again
    path.write_bytes(b"x" * len(jet_file))
    fetch(["toy:g"], cache, FAST, reg, progress=False)
    assert path.read_bytes() == jet_file and file_server.hits("/g.hdf5") == 2
    # the host now serves other bytes: the pin refuses them
    path.unlink()
    file_server.files["/g.hdf5"] = jet_file[:-1] + b"!"
    with pytest.raises(ChecksumError, match="pinned"):
        fetch(["toy:g"], cache, FAST, reg, progress=False)
    assert not path.exists()


def test_zenodo_records_api_supplies_the_checksum(tmp_path, file_server, jet_file):
    file_server.files["/g.hdf5"] = jet_file
    record = {"files": [{"key": "g.hdf5", "checksum": "md5:" + "1" * 32, "size": len(jet_file)}]}
    file_server.json_routes["/api/records/77"] = json.dumps(record)
    source = {"type": "zenodo", "record": 77, "api": file_server.url + "/api/records/"}
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, None)}, source=source)
    with pytest.raises(ChecksumError, match="zenodo-api"):
        fetch(["toy:g"], Cache(tmp_path / "c"), FAST, reg, progress=False)
    record["files"][0]["checksum"] = "md5:" + md5(jet_file)
    file_server.json_routes["/api/records/77"] = json.dumps(record)
    cache = Cache(tmp_path / "c2")
    fetch(["toy:g"], cache, FAST, reg, progress=False)
    assert cache.pinned(reg.get("toy"), reg.get("toy").file("g"))["source"] == "zenodo-api"


def test_cli_fetch_with_mirror_and_cache_dir(tmp_path, file_server, jet_file, monkeypatch):
    file_server.files["/g.hdf5"] = jet_file
    registry_for(tmp_path, "http://127.0.0.1:9", {"g": (jet_file, md5(jet_file))})
    monkeypatch.setenv("PCBENCH_REGISTRY", str(tmp_path / "datasets.yaml"))
    default_registry.cache_clear()
    try:
        res = CliRunner().invoke(cli, ["fetch", "toy:g", "--mirror", file_server.url,
                                       "--cache-dir", str(tmp_path / "cc")])
        assert res.exit_code == 0, res.output
        assert (tmp_path / "cc" / "toy" / "g.hdf5").read_bytes() == jet_file
        res = CliRunner().invoke(cli, ["datasets", "--cache-dir", str(tmp_path / "cc")])
        assert res.exit_code == 0 and "1/1" in res.output
        res = CliRunner().invoke(cli, ["fetch", "toy:nope"])
        assert res.exit_code == 1 and "has no member 'nope'" in res.output
    finally:
        default_registry.cache_clear()


# -- files without a published md5: registered sizes, layout checks, "unverified", --refresh ----------

@pytest.fixture
def use_registry(monkeypatch):
    """Point the CLI at the registry file ``tmp_path/datasets.yaml`` that ``registry_for`` wrote."""
    def use(path):
        monkeypatch.setenv("PCBENCH_REGISTRY", str(path))
        default_registry.cache_clear()

    monkeypatch.setattr(console, "width", 250)  # table rows on one line each
    yield use
    default_registry.cache_clear()


def _cache_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_cli_truncated_jetnet30_from_a_mirror_is_refused(tmp_path, file_server, jet_file):
    """The shipped registry knows JetNet30's sizes: a cut copy served whole by a mirror is refused."""
    file_server.files["/m/g.hdf5"] = jet_file  # a valid HDF5 file, but not the 87,919,040 bytes of g.hdf5
    cache = tmp_path / "c"
    res = CliRunner().invoke(cli, ["fetch", "jetnet30:g", "--mirror", file_server.url + "/m", "--cache-dir", str(cache)])
    assert_one_line_error(res, 1, f"{file_server.url}/m/g.hdf5: size mismatch: {len(jet_file):,} bytes, expected "
                          "87,919,040 (registered size)", "nothing was written to the cache")
    assert _cache_files(cache) == ["jetnet30"]  # no file, no .part, no pin, no lock


def _jets150(**kw) -> bytes:
    pf, jf = jetnet_arrays(n=60, p=150, seed=5)
    return h5_bytes(**{"particle_features": pf, "jet_features": jf, **kw})


@pytest.mark.parametrize("payload, message", [
    (lambda: _jets150()[: len(_jets150()) // 2], "not a complete, readable HDF5 file (OSError: "),
    (lambda: b"<html><body>429 Too Many Requests</body></html>", "not a complete, readable HDF5 file (OSError: "),
    (lambda: h5_bytes(**dict(zip(("particle_features", "jet_features"), jetnet_arrays(n=60, p=30)))),
     "particle_features: shape (60, 30, 4), expected (N, 150, 4) = (etarel, phirel, ptrel, mask)"),
    (lambda: h5_bytes(**dict(zip(("incident_energies", "showers"), calochallenge_arrays()))),
     "it is in the calochallenge layout, not the jetnet layout of jetnet-hdf5"),
    (lambda: _jets150(jet_features=jetnet_arrays(n=59, p=150)[1]),
     "row counts {'particle_features': 60, 'jet_features': 59}"),
])
def test_cli_file_without_size_or_md5_must_open_as_its_layout(tmp_path, file_server, payload, message):
    """jetnet150 publishes neither md5 nor size: a cut, foreign or misshapen file is refused
    before it enters the cache."""
    file_server.files["/m/t150.hdf5"] = payload()
    cache = tmp_path / "c"
    res = CliRunner().invoke(cli, ["fetch", "jetnet150:t", "--mirror", file_server.url + "/m", "--cache-dir", str(cache)])
    assert_one_line_error(res, 1, f"{file_server.url}/m/t150.hdf5: not a complete jetnet-hdf5 file for jetnet150: "
                          + message, "nothing was written to the cache")
    assert _cache_files(cache) == ["jetnet150"]


def test_cli_says_unverified_and_refresh_replaces_the_pinned_file(tmp_path, file_server, use_registry):
    a, b = (h5_bytes(**dict(zip(("particle_features", "jet_features"), jetnet_arrays(n=40, seed=s)))) for s in (1, 2))
    file_server.files["/g.hdf5"] = a
    reg = registry_for(tmp_path, file_server.url, {"g": (a, None)})
    use_registry(tmp_path / "datasets.yaml")
    cc, entry = tmp_path / "cc", reg.get("toy")

    def run(*args):
        return CliRunner().invoke(cli, [*args, "--cache-dir", str(cc)])

    res = run("fetch", "toy:g")
    assert res.exit_code == 0, res.output
    assert "unverified (no published checksum; md5 pinned now)" in res.output
    assert "unverified (no published md5; 1/1 pinned)" in run("datasets").output
    path = cc / "toy" / "g.hdf5"
    file_server.files["/g.hdf5"] = b  # the host now serves another file: the pinned copy stays
    assert run("fetch", "toy:g").exit_code == 0 and path.read_bytes() == a and file_server.hits("/g.hdf5") == 1
    file_server.files["/g.hdf5"] = b[: len(b) // 2]
    res = run("fetch", "toy:g", "--refresh")  # a failed refresh leaves the cached copy and its pin
    assert_one_line_error(res, 1, "g.hdf5: not a complete jetnet-hdf5 file for toy: not a complete, readable HDF5",
                          "nothing was written to the cache")
    assert path.read_bytes() == a and Cache(cc).pinned(entry, entry.file("g"))["md5"] == md5(a)
    file_server.files["/g.hdf5"] = b
    res = run("fetch", "toy:g", "--refresh")
    assert res.exit_code == 0 and "unverified (no published checksum; md5 pinned now)" in res.output
    assert path.read_bytes() == b and Cache(cc).pinned(entry, entry.file("g"))["md5"] == md5(b)
    assert _cache_files(cc) == ["checksums.json", "toy", "toy/g.hdf5"]


@pytest.mark.parametrize("registered", [True, False])
def test_cli_a_truncated_file_pinned_by_an_older_pcbench_is_fetched_again(tmp_path, file_server, jet_file,
                                                                           use_registry, registered):
    """The issue's case: a cut file was pinned as 'first-download'; the next fetch must not trust it."""
    file_server.files["/g.hdf5"] = jet_file
    reg = registry_for(tmp_path, file_server.url, {"g": (jet_file, None)},
                       sizes={"g": len(jet_file)} if registered else None)
    use_registry(tmp_path / "datasets.yaml")
    cc, entry = tmp_path / "cc", reg.get("toy")
    half = jet_file[: len(jet_file) // 2]
    (cc / "toy").mkdir(parents=True)
    (cc / "toy" / "g.hdf5").write_bytes(half)
    Cache(cc).pin(entry, entry.file("g"), md5(half), len(half), "first-download")
    res = CliRunner().invoke(cli, ["fetch", "toy:g", "--cache-dir", str(cc)])
    assert res.exit_code == 0, res.output
    assert (cc / "toy" / "g.hdf5").read_bytes() == jet_file and file_server.hits("/g.hdf5") == 1
    assert Cache(cc).pinned(entry, entry.file("g"))["md5"] == md5(jet_file)


def test_cli_fetch_removes_what_killed_runs_left(tmp_path, file_server, jet_file, use_registry):
    file_server.files["/g.hdf5"] = jet_file
    registry_for(tmp_path, file_server.url, {"g": (jet_file, md5(jet_file))})
    use_registry(tmp_path / "datasets.yaml")
    cc = tmp_path / "cc"
    (cc / "toy").mkdir(parents=True)
    left = {"toy/g.hdf5.part": b"", "toy/.g.hdf5.1x2y.tmp": b"half", "toy/.g.hdf5.lock": b"pid 1",
            "toy/g.hdf5.lock": b"", ".checksums.json.9z.tmp": b"{", "checksums.json.lock": b""}
    for name, data in left.items():
        (cc / name).write_bytes(data)
    first = CliRunner().invoke(cli, ["fetch", "toy:g", "--cache-dir", str(cc)])
    again = CliRunner().invoke(cli, ["fetch", "toy:g", "--cache-dir", str(cc)])  # the cached copy
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert _cache_files(cc) == ["toy", "toy/g.hdf5"]
    assert "verified (md5 published in the registry)" in again.output


def test_cli_a_partial_file_from_one_mirror_is_never_resumed_from_another(tmp_path, file_server, jet_file,
                                                                          use_registry):
    # another file, larger than the CLI's 1 MiB read size so that the cut leaves a partial file
    other = h5_bytes(**dict(zip(("particle_features", "jet_features"), jetnet_arrays(n=5000, seed=9))))
    file_server.files["/a/g.hdf5"], file_server.cut_after["/a/g.hdf5"] = other, len(other) * 4 // 5
    file_server.files["/b/g.hdf5"] = jet_file
    registry_for(tmp_path, "http://127.0.0.1:9", {"g": (jet_file, md5(jet_file))})
    use_registry(tmp_path / "datasets.yaml")
    cc = tmp_path / "cc"

    def run(mirror):
        return CliRunner().invoke(cli, ["fetch", "toy:g", "--mirror", file_server.url + mirror, "--retries", "0",
                                        "--cache-dir", str(cc)])

    assert_one_line_error(run("/a"), 1, f"giving up on {file_server.url}/a/g.hdf5 after 1 attempts")
    assert [p.stat().st_size > 0 for p in (cc / "toy").glob("g.hdf5*.part")] == [True]  # kept to resume from /a
    res = run("/b")
    assert res.exit_code == 0, res.output
    assert (cc / "toy" / "g.hdf5").read_bytes() == jet_file
    assert [r for p, r in file_server.requests if p == "/b/g.hdf5"] == [None]  # from byte 0, not resumed
    assert _cache_files(cc) == ["toy", "toy/g.hdf5"]


def test_cli_fetch_refuses_an_unusable_cache_dir_before_downloading(tmp_path, file_server, jet_file, use_registry):
    file_server.files["/g.hdf5"] = jet_file
    registry_for(tmp_path, file_server.url, {"g": (jet_file, md5(jet_file))})
    use_registry(tmp_path / "datasets.yaml")
    ro, a_file = unwritable_folder(tmp_path), tmp_path / "notes.txt"
    a_file.write_text("x")
    for cache_dir, message in (
            (tmp_path / "missing" / "cache", f"the parent folder {tmp_path / 'missing'} of "
                                             f"{tmp_path / 'missing' / 'cache'} does not exist"),
            (ro / "cache", f"the folder {ro} is not writable"),
            (a_file / "cache", f"the parent folder {a_file} of {a_file / 'cache'} is a file, not a folder")):
        res = CliRunner().invoke(cli, ["fetch", "toy:g", "--cache-dir", str(cache_dir)])
        assert_one_line_error(res, 2, f"Invalid value for '--cache-dir': {message}")
    res = CliRunner().invoke(cli, ["datasets", "--cache-dir", str(tmp_path / "missing")])
    assert_one_line_error(res, 2, f"Invalid value for '--cache-dir': the folder {tmp_path / 'missing'} does not exist")
    assert file_server.hits("/g.hdf5") == 0 and not (tmp_path / "missing").exists()
