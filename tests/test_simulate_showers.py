"""Parameterised showers: physics checks, layouts, determinism; the ILD layout's round trip."""

from __future__ import annotations

import dataclasses
import subprocess
import time

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.data import formats, validate_file
from pcbench.data.containers import ShowerPointSet, VoxelShowerSet
from pcbench.data.simulate.gflash import ShowerModel, draw_showers, radial_fraction
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk, simulate_showers
from pcbench.data.workfiles import lock_path
from pcbench.geometry import get_geometry, project

from cli_checks import assert_one_line_error, pcbench_process, unwritable_folder


def _at(target: str, energy_mev: float, n: int, seed: int = 11, **model):
    t = SHOWER_TARGETS[target]
    t = dataclasses.replace(t, energy_range=(energy_mev, energy_mev), log_uniform=False,
                            model=dataclasses.replace(t.model, **model))
    return simulate_shower_chunk(t, seed, n)


def _tmax(voxels: np.ndarray) -> float:
    """Depth of the maximum [X0] of the mean longitudinal profile, from its Gamma moments."""
    layer = voxels.reshape(len(voxels), 45, 16, 9).sum((0, 2, 3))
    t = (np.arange(45) + 0.5) * (2.8 / 3.504)
    m = (layer * t).sum() / layer.sum()
    var = (layer * (t - m) ** 2).sum() / layer.sum()
    return m - var / m  # (alpha - 1) / beta


def test_shower_maximum_grows_like_ln_energy():
    e = np.array([2e3, 20e3, 200e3])
    tmax = np.array([_tmax(_at("calochallenge-2", x, 60)["voxels"]) for x in e])
    slope = np.diff(tmax) / np.diff(np.log(e))
    assert np.all(np.abs(slope - 1.0) < 0.25), (tmax, slope)  # dT/d ln E = 1 X0 (T = ln(E/Ec) + const)
    assert abs(tmax[1] - (np.log(20e3 / 8.0) - 0.858)) < 1.0  # and near the GFlash mean at 20 GeV


def test_about_ninety_percent_within_one_moliere_radius():
    v = _at("calochallenge-2", 50e3, 60)["voxels"].reshape(-1, 45, 16, 9).sum((1, 2))
    frac = v[:, :2].sum() / v.sum()  # data set 2 radial edges: 0, 4.65, 9.3 mm = 1 R_M of W
    assert 0.86 < frac < 0.94, frac
    # the model itself: the same within 1 R_M at the shower maximum, more with a narrower profile
    assert 0.8 < radial_fraction(9.3, np.array(1.0), np.array(50.0), ShowerModel()) < 0.95
    narrow = _at("calochallenge-2", 50e3, 30, radial_scale=0.5)["voxels"].reshape(-1, 45, 16, 9).sum((1, 2))
    assert narrow[:, :2].sum() / narrow.sum() > frac + 0.03


def test_visible_energy_is_linear_and_resolution_falls_like_one_over_sqrt_e():
    """ILD samples its last 10 layers behind twice the tungsten: as in ILD's reconstruction, each
    layer's visible energy is weighted by 1 / its sampling fraction before the sum."""
    from pcbench.data.simulate.showers import _grid_layers

    g = get_geometry("ild-ecal")
    t = SHOWER_TARGETS["ild-photons"]
    _, sf = _grid_layers(g, t.model.material.x0, t.sampling_fraction)
    stats, raw = {}, {}
    for e in (10e3, 40e3, 90e3):
        pts = _at("ild-photons", e, 150)["points"]
        layer = g.layer_of_depth(pts[..., 1].ravel()).reshape(pts.shape[:2])
        w = np.where(pts[..., 3] > 0, 1.0 / sf[np.maximum(layer, 0)], 0.0)
        vis = (pts[..., 3] * w).sum(1, dtype=np.float64)
        stats[e] = (vis.mean() / e, vis.std() / vis.mean())
        raw[e] = pts[..., 3].sum(1, dtype=np.float64).mean() / e
    ratio = [stats[e][0] for e in stats]
    assert max(ratio) / min(ratio) < 1.03, stats  # linear within 3 % (leakage grows slowly with E)
    assert 0.012 < raw[10e3] < 0.03  # an ILD-like raw sampling fraction (E_vis / E_inc)
    res10, res40, res90 = (stats[e][1] for e in stats)
    assert res10 / res40 == pytest.approx(2.0, rel=0.25) and res10 / res90 == pytest.approx(3.0, rel=0.3), stats
    assert res10 == pytest.approx(0.166 / np.sqrt(10), rel=0.25)  # the model's stochastic term


def test_photons_start_later_than_electrons():
    rng = np.random.default_rng(0)
    e = np.full(20000, 20e3)
    ph = draw_showers(e, ShowerModel(particle="photon"), rng)
    el = draw_showers(e, ShowerModel(particle="electron"), rng)
    assert ph.start.mean() == pytest.approx(9 / 7, rel=0.05) and np.all(el.start == 0)
    assert np.corrcoef(np.log(ph.tmax), np.log(ph.alpha))[0, 1] > 0.3  # correlated parameters


def test_files_load_validate_and_are_labelled(tmp_path):
    ild = simulate_showers("ild-photons", 24, tmp_path / "ild.h5", seed=3, chunk_size=10, progress=False)
    cc2 = simulate_showers("calochallenge-2", 12, tmp_path / "cc2.h5", seed=3, chunk_size=5, progress=False)
    with h5py.File(ild) as f:
        assert f["events"].shape == (24, 4, 6000) and f["energy"].shape == (24, 1)
        ev = f["events"][:]
        assert 10 <= f["energy"][:].min() and f["energy"][:].max() <= 90  # GeV
        assert f.attrs["parameterised"] and "PARAMETERISED" in f.attrs["source"]
        real = ev[:, 3] > 0
        assert not real[:, 0].any() and real[:, -1].all()  # padded at the front, as the CaloClouds files
        assert set(np.unique(ev[:, 1][real])) <= set(range(30))  # y in layer units
    with h5py.File(cc2) as f:
        assert f["showers"].shape == (12, 6480) and f.attrs["geometry"] == "calochallenge-2"
        e = f["incident_energies"][:]
        assert 1e3 <= e.min() and e.max() <= 1e6
    a, b = formats.read(ild), formats.read(cc2)
    assert isinstance(a, ShowerPointSet) and isinstance(b, VoxelShowerSet) and b.geometry == "calochallenge-2"
    assert validate_file(ild).ok and validate_file(cc2).ok
    g = get_geometry("ild-ecal")
    assert np.all(g.layer_of_depth(a.points[a.mask][:, 1]) >= 0)  # layer units became slab depths in mm
    assert project(a.points, g, a.mask).outside_points.sum() == 0
    # the ILD layout round-trips through the writer
    formats.write(tmp_path / "again.h5", a, layout="ild")
    c = formats.read(tmp_path / "again.h5")
    assert np.array_equal(c.points, a.points) and np.array_equal(c.incident_energy, a.incident_energy)


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    one = simulate_showers("calochallenge-2", 8, tmp_path / "a.h5", seed=5, chunk_size=3, workers=1, progress=False)
    two = simulate_showers("calochallenge-2", 8, tmp_path / "b.h5", seed=5, chunk_size=3, workers=2, progress=False)
    other = simulate_showers("calochallenge-2", 8, tmp_path / "c.h5", seed=6, chunk_size=3, workers=1, progress=False)
    with h5py.File(one) as f, h5py.File(two) as g, h5py.File(other) as h:
        assert np.array_equal(f["showers"][:], g["showers"][:]) and not np.array_equal(f["showers"][:], h["showers"][:])


def test_validation_names_points_outside_the_geometry(tmp_path):
    pts = np.zeros((3, 5, 4), np.float32)
    g = get_geometry("ild-ecal")
    pts[:, :, 1] = g.layer_depths[4]
    pts[:, :, 3] = 1.0
    pts[1, :3, 0] = 500.0  # 60 % of shower 1 outside x in [-200, 200]
    formats.write(tmp_path / "o.h5", ShowerPointSet(pts, pts[..., 3] > 0, np.full(3, 5e4, np.float32)), layout="ild")
    rep = validate_file(tmp_path / "o.h5")
    assert not rep.ok and "outside geometry ild-ecal in 1 entries, first at row 1" in rep.lines()[0]
    assert validate_file(tmp_path / "o.h5", outside_tolerance=0.7).ok


def test_simulate_cli_writes_into_the_cache_and_the_hint_names_it(tmp_path):
    res = CliRunner().invoke(cli, ["simulate", "ild-photons", "--file", "test", "-n", "6", "--cache-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    path = tmp_path / "ild-photons-param" / "ild_photons_param_test.hdf5"
    with h5py.File(path) as f:
        assert f["events"].shape[0] == 6 and formats.read_attrs(path)["seed"] == 2  # 1 + the member's position
    from pcbench.data import default_registry
    assert "pcbench simulate calochallenge-2 --file 2" in default_registry().get("calochallenge-2").offline_hint("2")


# -- one run per output, resume only what the same settings made, nothing left by killed runs --------

def _showers(path):
    with h5py.File(path) as f:
        return f["showers"][:], formats.read_attrs(path)["seed"]


def test_a_second_simulate_into_one_output_is_refused(tmp_path):
    """Two real `pcbench simulate` processes into one -o: the second is refused with one line and
    touches nothing; the file then holds only the first run's showers (seed 1), as a clean run."""
    out = tmp_path / "cc2.h5"
    first = pcbench_process("-m", "pcbench", "simulate", "calochallenge-2", "-n", "12", "--chunk-size", "1",
                            "--seed", "1", "-o", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first_chunk = tmp_path / "cc2.h5.chunks" / "chunk_00000_1.npz"
    deadline = time.monotonic() + 60
    while not first_chunk.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the first run is simulating
    res = CliRunner().invoke(cli, ["simulate", "calochallenge-2", "-n", "12", "--chunk-size", "1", "--seed", "2",
                                   "-o", str(out)])
    assert first.poll() is None, "the first run ended before the second started: make it longer"
    assert_one_line_error(res, 1, f"{out}: another pcbench run holds it (pid {first.pid}", "pass another -o")
    assert first.wait(120) == 0, first.stderr.read()
    clean = simulate_showers("calochallenge-2", 12, tmp_path / "clean.h5", seed=1, chunk_size=1, progress=False)
    (mixed, seed), (ref, _) = _showers(out), _showers(clean)
    assert seed == 1 and np.array_equal(mixed, ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cc2.h5", "clean.h5"]  # no lock, no .chunks, no .tmp


def test_resume_refuses_other_settings_and_removes_what_a_killed_run_left(tmp_path, monkeypatch):
    from pcbench.data.simulate import showers as showers_module

    real, calls = showers_module.simulate_shower_chunk, []

    def interrupted(target, seed, n):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run is killed during its second chunk
        return real(target, seed, n)

    out = tmp_path / "cc2.h5"
    args = ["simulate", "calochallenge-2", "-n", "6", "--chunk-size", "2", "-o", str(out)]
    monkeypatch.setattr(showers_module, "simulate_shower_chunk", interrupted)
    CliRunner().invoke(cli, [*args, "--seed", "1"])
    monkeypatch.setattr(showers_module, "simulate_shower_chunk", real)
    chunks = tmp_path / "cc2.h5.chunks"
    assert [p.name for p in chunks.glob("chunk_*.npz")] == ["chunk_00000_2.npz"] and not out.exists()
    # what a kill -9 leaves: the lock file, a half-written output and a half-written chunk (hidden .tmp)
    leftovers = [lock_path(out), tmp_path / ".cc2.h5.k2j3.h5.tmp", chunks / ".chunk_00001_2.npz.x8.npz.tmp"]
    for p in leftovers:
        p.write_bytes(b"half")
    for extra, message in ((["--seed", "2"], "seed (--seed): chunks 1, this run 2"),
                           (["--seed", "1", "--chunk-size", "3"], "chunk_size (--chunk-size): chunks 2, this run 3"),
                           (["--seed", "1", "-n", "8"], "n (-n): chunks 6, this run 8")):
        res = CliRunner().invoke(cli, [*args, *extra, "--resume"])
        assert_one_line_error(res, 1, f"--resume: the chunks in {chunks} were made with other settings", message)
        assert (chunks / "chunk_00000_2.npz").exists()  # refused: the kept chunks are untouched
    manifest = chunks / "settings.json"
    good = manifest.read_text()
    manifest.write_text("{cut")
    res = CliRunner().invoke(cli, [*args, "--seed", "1", "--resume"])
    assert_one_line_error(res, 1, f"--resume: cannot read {manifest}", "run without --resume")
    manifest.write_text(good)
    calls.clear()
    monkeypatch.setattr(showers_module, "simulate_shower_chunk", lambda t, s, n: calls.append(s) or real(t, s, n))
    res = CliRunner().invoke(cli, [*args, "--seed", "1", "--resume"])
    assert res.exit_code == 0, res.output
    assert len(calls) == 2  # chunk 0 was kept; chunks 1 and 2 were made
    clean = simulate_showers("calochallenge-2", 6, tmp_path / "clean.h5", seed=1, chunk_size=2, progress=False)
    assert np.array_equal(_showers(out)[0], _showers(clean)[0])
    assert not any(p.exists() for p in leftovers) and not chunks.exists()


@pytest.mark.parametrize("args, message", [
    (["-n", "0"], "Invalid value for '-n' / '--num': 0 is not in the range x>=1"),
    (["-n", "-5"], "Invalid value for '-n' / '--num': -5 is not in the range x>=1"),
    (["--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0"),
    (["--chunk-size", "0"], "Invalid value for '--chunk-size': 0 is not in the range x>=1"),
    (["--chunk-size", "-5"], "Invalid value for '--chunk-size': -5 is not in the range x>=1"),
    (["--workers", "0"], "Invalid value for '--workers': 0 is not in the range x>=1"),
    (["-o", "{tmp}/missing/out.h5"], "Invalid value for '-o' / '--output': the folder {tmp}/missing does not exist"),
    (["-o", "{ro}/out.h5"], "Invalid value for '-o' / '--output': the folder {ro} is not writable"),
    (["--cache-dir", "{tmp}/missing/cache"],
     "Invalid value for '--cache-dir': the parent folder {tmp}/missing of {tmp}/missing/cache does not exist"),
    (["--cache-dir", "{ro}/cache"], "Invalid value for '--cache-dir': the folder {ro} is not writable"),
])
def test_simulate_bad_options_are_one_line_usage_errors(tmp_path, args, message):
    ro = unwritable_folder(tmp_path)
    fill = {"tmp": str(tmp_path), "ro": str(ro)}
    res = CliRunner().invoke(cli, ["simulate", "calochallenge-2", "-n", "2", *[a.format(**fill) for a in args]])
    assert_one_line_error(res, 2, message.format(**fill))
    assert sorted(p.name for p in tmp_path.iterdir()) == (["read-only"] if ro.parent == tmp_path else [])
