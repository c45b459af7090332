"""Small, valid arrays and files in the sources' layouts, made by the tests themselves."""

from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np


def jetnet_arrays(n: int = 50, p: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, p, 4) particle features and (n, 4) jet features that satisfy every JetNet invariant."""
    rng = np.random.default_rng(seed)
    pf = np.zeros((n, p, 4), dtype=np.float32)
    counts = rng.integers(5, p + 1, size=n)
    jf = np.zeros((n, 4), dtype=np.float32)
    for i, k in enumerate(counts):
        pt = np.sort(rng.dirichlet(np.ones(k)))[::-1]
        pf[i, :k, 0] = rng.normal(0, 0.1, k)
        pf[i, :k, 1] = rng.normal(0, 0.1, k)
        pf[i, :k, 2] = pt
        pf[i, :k, 3] = 1
    jf[:, 0] = rng.uniform(900, 1100, n)
    jf[:, 1] = rng.uniform(-2, 2, n)
    jf[:, 2] = rng.uniform(10, 200, n)
    jf[:, 3] = counts
    return pf, jf


def calochallenge_arrays(n: int = 20, v: int = 368, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1) incident energies and (n, v) non-negative voxel energies, MeV."""
    rng = np.random.default_rng(seed)
    inc = rng.uniform(1e3, 1e5, size=(n, 1)).astype(np.float32)
    showers = (rng.exponential(1.0, size=(n, v)) * (rng.random((n, v)) < 0.3)).astype(np.float32)
    return inc, showers


def ild_arrays(n: int = 10, p: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4, p) ILD events (x, y [layer], z, E [GeV]), right-aligned, and (n, 1) energies [GeV]."""
    rng = np.random.default_rng(seed)
    ev = np.zeros((n, 4, p), dtype=np.float32)
    for i in range(n):
        k = rng.integers(5, p + 1)
        ev[i, 0, p - k:] = rng.normal(0, 20, k)
        ev[i, 1, p - k:] = rng.integers(0, 30, k)
        ev[i, 2, p - k:] = rng.normal(40, 20, k)
        ev[i, 3, p - k:] = rng.exponential(1e-3, k) + 1e-5
    return ev, rng.uniform(10, 90, size=(n, 1)).astype(np.float32)


def h5_bytes(**datasets: np.ndarray) -> bytes:
    """An HDF5 file holding ``datasets``, as bytes (to serve over HTTP)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)
    return buf.getvalue()


def write_h5(path: Path, attrs: dict | None = None, **datasets: np.ndarray) -> Path:
    """Write ``datasets`` (and root ``attrs``) to an HDF5 file at ``path``."""
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    return path


def jet_cli_round_trip(name: str, jets, tmp_path: Path, sets: dict[str, object]) -> str:
    """``pcbench train NAME`` (1 epoch, ``--set`` each of ``sets``) -> ``sample`` 60 jets ->
    ``evaluate`` (W1M, W1P) on ``jets``, asserting every step; returns the evaluate output."""
    from click.testing import CliRunner

    from pcbench.cli import cli
    from pcbench.data import read, validate_file, write

    data = write(tmp_path / "jets.h5", jets)
    opts = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    res = CliRunner().invoke(cli, ["train", name, "--data-file", str(data), "--epochs", "1", "--out",
                                   str(tmp_path / "run"), *opts])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["sample", str(tmp_path / "run" / "last.pt"), "-n", "60", "-o", str(tmp_path / "s.h5")])
    assert res.exit_code == 0, res.output
    assert validate_file(tmp_path / "s.h5").ok and read(tmp_path / "s.h5").attrs["model"] == name
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "s.h5"), "--reference", str(data), "--profile", "fast",
                                   "--metrics", "w1m,w1p", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "W1 of jet m/pT" in res.output
    return res.output


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a test's gloo process group)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shower_ddp_worker(rank: int, world: int, port: int, name: str, config: dict, data: str, out: str,
                       options: dict) -> None:
    """One torchrun-like process training shower generator ``name``; every rank also saves its own weights."""
    import os

    import torch

    import pcbench.models.showers.training as st
    from pcbench.data import formats
    from pcbench.models import TrainOptions, train

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    save = st._save

    def save_every_rank(model, run):
        torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")
        return save(model, run)

    st._save = save_every_rank
    Path(out).mkdir(parents=True, exist_ok=True)
    train(name, config, formats.read(data), TrainOptions(out_dir=Path(out), progress=False, **options))
    torch.distributed.destroy_process_group()


def shower_ddp(name: str, config: dict, data: Path, out: Path, world: int = 2, **options) -> tuple[dict, dict, dict]:
    """Train shower generator ``name`` (``config``) on the shower file ``data`` in ``world`` gloo
    processes started as torchrun starts them (``options``: more TrainOptions); returns the run's
    ``last.pt`` payload and the state dicts of ranks 0 and 1, saved by each rank at its last checkpoint."""
    import torch

    torch.multiprocessing.start_processes(_shower_ddp_worker, args=(world, free_port(), name, config, str(data),
                                                                    str(out), options),
                                          nprocs=world, join=True, start_method="spawn")
    payload = torch.load(Path(out) / "last.pt", weights_only=False)
    return payload, *(torch.load(Path(out) / f"rank{r}.pt") for r in (0, 1))


def shower_cli_round_trip(name: str, showers, tmp_path: Path, sets: dict) -> tuple[Path, Path]:
    """``pcbench train NAME --set k=v ...`` on ``showers`` written to a file, then ``pcbench sample``
    of as many showers at that file's incident energies; both must exit 0.  Returns (the training
    file, the sample file)."""
    import json

    from click.testing import CliRunner

    from pcbench.cli import cli
    from pcbench.data import formats

    data = formats.write(tmp_path / "train.h5", showers)
    options = [a for k, v in sets.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    res = CliRunner().invoke(cli, ["train", name, "--data-file", str(data), "--out", str(tmp_path / "m"), *options])
    assert res.exit_code == 0, res.output
    out = tmp_path / "gen.h5"
    res = CliRunner().invoke(cli, ["sample", str(tmp_path / "m" / "last.pt"), "-n", str(len(showers.incident_energy)),
                                   "-o", str(out), "--energies-from", str(data)])
    assert res.exit_code == 0, res.output
    return data, out


def voxel_samples(out: Path, showers, name: str):
    """The sample file ``out`` of ``shower_cli_round_trip``: voxel showers of ``showers``' geometry,
    one per training shower at its incident energy, written by model ``name``."""
    from pcbench.data import formats
    from pcbench.data.containers import VoxelShowerSet
    from pcbench.geometry import get_geometry

    gen = formats.read(out)
    n_cells = get_geometry(showers.geometry).n_cells
    assert isinstance(gen, VoxelShowerSet) and gen.voxels.shape == (len(showers.incident_energy), n_cells)
    assert np.array_equal(gen.incident_energy, showers.incident_energy)
    assert formats.read_attrs(out)["model"] == name
    return gen


def cli_metric(samples: Path, reference: Path, tmp_path: Path, metric: str) -> float:
    """``pcbench evaluate SAMPLES --reference REF --profile fast --metrics METRIC`` (must exit 0):
    the value in its record."""
    import json

    from click.testing import CliRunner

    from pcbench.cli import cli

    res = CliRunner().invoke(cli, ["evaluate", str(samples), "--reference", str(reference), "--profile", "fast",
                                   "--metrics", metric, "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    rec = json.loads(next((tmp_path / "ev").rglob("*.json")).read_text())
    return rec["metrics"][metric]["value"]


def ds2_voxel_showers(n: int, seed: int = 6):
    """``n`` parameterised data-set-2 showers (pcbench's shower simulation, ``seed``) as voxels."""
    from pcbench.data.containers import VoxelShowerSet
    from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk

    d = simulate_shower_chunk(SHOWER_TARGETS["calochallenge-2"], seed, n)
    return VoxelShowerSet(d["voxels"], d["incident_energy"], "calochallenge-2")
