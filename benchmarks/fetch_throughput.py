"""Download throughput of `pcbench fetch` over loopback (127.0.0.1), md5 verification included.

Run: .venv/bin/python benchmarks/fetch_throughput.py [--mb 500]
Writes a file of random bytes, serves it with Python's http.server on 127.0.0.1 (a thread),
fetches it through a one-entry registry with its md5, and prints MB/s for the download and for
the whole fetch (download + md5 + rename), beside the rate of reading the file and hashing it.
"""

from __future__ import annotations

import argparse
import functools
import os
import hashlib
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pcbench._io import file_md5
from pcbench.data import Cache, FetchOptions, Registry
from pcbench.data.fetch import fetch_file


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "srv").mkdir()
        blob = tmp / "srv" / "big.hdf5"
        digest = hashlib.md5()
        with open(blob, "wb") as fh:
            for _ in range(args.mb):
                chunk = os.urandom(1 << 20)
                digest.update(chunk)
                fh.write(chunk)
        t0 = time.perf_counter()
        file_md5(blob)
        hash_rate = args.mb / (time.perf_counter() - t0)
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp / "srv")))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/big.hdf5"
        (tmp / "reg.yaml").write_text(
            "schema: 1\ndatasets:\n  big:\n    {title: t, kind: jets, format: f, source: {type: http}, split: {}, "
            f"citation: c, licence: l, files: {{a: {{name: big.hdf5, url: '{url}', md5: '{digest.hexdigest()}'}}}}}}\n")
        reg = Registry.from_yaml(tmp / "reg.yaml")
        done: dict[str, float] = {}

        def progress(_name, n, total):
            if total and n >= total and "download" not in done:
                done["download"] = time.perf_counter()

        entry = reg.get("big")
        t0 = time.perf_counter()
        fetch_file(entry, entry.file("a"), Cache(tmp / "cache"), FetchOptions(), on_progress=progress)
        total = time.perf_counter() - t0
        server.shutdown()
        print(f"file {args.mb} MB; loopback, one connection, chunks of 1 MiB")
        print(f"download only:            {args.mb / (done['download'] - t0):8.1f} MB/s")
        print(f"whole fetch (+md5, rename): {args.mb / total:8.1f} MB/s")
        print(f"md5 of the file alone:    {hash_rate:8.1f} MB/s")


if __name__ == "__main__":
    main()
