"""Shared fixtures: a local HTTP file server on 127.0.0.1 and small files in the sources' layouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

@dataclass
class FileServer:
    """A threaded HTTP server on 127.0.0.1 serving in-memory files, with scripted faults.

    ``files`` maps a URL path ("/g.hdf5") to bytes.  ``cut_after`` maps a path to a byte count:
    the first full (non-Range) response for that path stops after that many bytes and closes the
    connection.  ``delay`` maps a path to seconds to sleep before answering.  ``requests`` logs
    (path, Range header) of every request.  ``honour_range`` False makes the server ignore Range.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    honour_range: bool = True
    json_routes: dict[str, str] = field(default_factory=dict)
    url: str = ""

    def hits(self, path: str) -> int:
        return sum(p == path for p, _ in self.requests)


def _handler(state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            path, rng = self.path, self.headers.get("Range")
            state.requests.append((path, rng))
            if path in state.delay:
                time.sleep(state.delay[path])
            if path in state.json_routes:
                body = state.json_routes[path].encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            data = state.files.get(path)
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            if rng and state.honour_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = state.cut_after.pop(path, None) if start == 0 else None
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """Start a FileServer in a thread on a free port of 127.0.0.1; stop it after the test."""
    state = FileServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch) -> None:
    """Every test gets its own cache (``$PCBENCH_CACHE``): evaluations write truth rows there, and a
    test must never read or fill the user's cache.  Tests that pass a cache explicitly still may."""
    monkeypatch.setenv("PCBENCH_CACHE", str(tmp_path_factory.mktemp("pcbench-cache")))


@pytest.fixture(scope="module")
def one_thread():
    """One thread for torch and the OpenMP / BLAS pools for a module (``pytestmark =
    pytest.mark.usefixtures("one_thread")``): on a shared 2-core machine oversubscribed threads make
    small networks and boosted trees several times slower; the numbers do not depend on it."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)
