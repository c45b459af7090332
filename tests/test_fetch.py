"""pcbench fetch against a local HTTP server on 127.0.0.1: resume, checksums, errors, locks."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from factories import h5_bytes, jetnet_arrays
from pcbench.cli import cli
from pcbench.data import Cache, FetchOptions, Registry, fetch, load
from pcbench.data.registry import default_registry
from pcbench.errors import ChecksumError, DataUnavailableError, FetchError

FAST = FetchOptions(retries=2, timeout=5.0, backoff=0.01, chunk_bytes=4096)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def registry_for(tmp_path, base_url: str, files: dict[str, tuple[bytes, str | None]], source=None) -> Registry:
    """A one-data-set registry file ('toy', kind jets) whose members are served at base_url."""
    lines = ["schema: 1", "datasets:", "  toy:", "    title: toy", "    kind: jets", "    format: jetnet-hdf5",
             f"    source: {json.dumps(source or {'type': 'http'})}",
             "    split: {convention: jetnet, fractions: [0.7, 0.15, 0.15], seed: 42}",
             "    citation: none", "    licence: none",
             "    offline: 'pcbench simulate jetnet30 --jet-type {key}'", "    files:"]
    for key, (_, digest) in files.items():
        lines.append(f"      {key}: {{name: {key}.hdf5, url: '{base_url}/{key}.hdf5', "
                     f"md5: {repr(digest) if digest else 'null'}, size: null, jet_type: {key}}}")
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
