"""Offline jets (Pythia 8 + FastJet): physics checks on small samples, determinism, resume."""

from __future__ import annotations

import socket

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.data import Cache, FetchOptions, fetch, load, read, validate_file
from pcbench.data.simulate import JetSimConfig, run_chunks, simulate_jets
from pcbench.data.simulate import jets as jets_module
from pcbench.data.simulate.chunks import ResumeMismatchError
from pcbench.data.simulate.jets import jet_features_from_constituents, simulate_jet_chunk
from pcbench.errors import DataUnavailableError

from cli_checks import assert_one_line_error, hold_run_lock

# Resonance masses [GeV].  A jet's mass is the resonance's mass shifted down by FSR lost outside
# R = 0.8 and up by ISR and the underlying event inside it (at pT ~ 1 TeV the upward shift wins:
# measured here, the W peak sits at 80-100 GeV), so the windows are asymmetric: the most probable
# mass (10 GeV bins) within [m - 10, m + 20] GeV and at least half the jets within [m - 15, m + 25].
PEAKS = {"t": 172.5, "w": 80.4, "z": 91.2}


@pytest.fixture(scope="module")
def samples() -> dict[str, dict[str, np.ndarray]]:
    """JetNet150-layout samples (150 slots keep (nearly) every constituent), 100 jets per class."""
    n = {"g": 100, "q": 100, "t": 100, "w": 100, "z": 100}
    return {jt: simulate_jet_chunk(JetSimConfig(jt, num_particles=150), seed=11, n=k) for jt, k in n.items()}


def test_two_particle_jet_has_the_analytic_mass():
    # two massless particles, pT = 100 GeV each, eta = 0, phi = 0 and 0.2:
    # m^2 = 2 pT1 pT2 (cosh deta - cos dphi) -> m = 200 sin(0.1); pT_jet = 200 cos(0.1)
    p4 = np.array([[100.0, 0.0, 0.0, 100.0], [100 * np.cos(0.2), 100 * np.sin(0.2), 0.0, 100.0]])
    pf, jf = jet_features_from_constituents(p4, num_particles=4)
    np.testing.assert_allclose(jf[:3], [200 * np.cos(0.1), 0.0, 200 * np.sin(0.1)], rtol=1e-6, atol=1e-6)
    assert jf[3] == 2
    np.testing.assert_allclose(pf[:2, 1], [-0.1, 0.1], atol=1e-6)  # phirel about the jet axis
    np.testing.assert_allclose(pf[:2, 2], 100 / (200 * np.cos(0.1)), rtol=1e-6)
    assert pf[2:].tolist() == [[0, 0, 0, 0]] * 2


def test_phirel_wraps_across_pi():
    phis = np.array([np.pi - 0.05, -np.pi + 0.05])  # both near the phi = +-pi boundary
    p4 = np.stack([50 * np.cos(phis), 50 * np.sin(phis), np.zeros(2), np.full(2, 50.0)], axis=1)
    pf, _ = jet_features_from_constituents(p4, 2)
    np.testing.assert_allclose(np.sort(pf[:, 1]), [-0.05, 0.05], atol=1e-5)


def test_resonance_masses_peak_where_they_should(samples):
    for jt, mass in PEAKS.items():
        m = samples[jt]["jet_features"][:, 2]
        inside = np.mean((m > mass - 15) & (m < mass + 25))
        assert inside >= 0.5, f"{jt}: only {inside:.0%} of jets within [{mass - 15}, {mass + 25}] GeV"
        hist, edges = np.histogram(m, bins=np.arange(0, 300, 10))
        peak = edges[np.argmax(hist)] + 5
        assert mass - 10 <= peak <= mass + 20, f"{jt}: mass histogram peaks at {peak} GeV"
    # QCD jets are much lighter on average than top jets
    assert np.median(samples["q"]["jet_features"][:, 2]) < 0.75 * np.median(samples["t"]["jet_features"][:, 2])


def test_gluon_jets_have_more_constituents_than_quark_jets(samples):
    ng = samples["g"]["jet_features"][:, 3].mean()
    nq = samples["q"]["jet_features"][:, 3].mean()
    assert ng > 1.2 * nq, (ng, nq)


def test_jets_are_near_one_tev(samples):
    for jt, s in samples.items():
        pt = s["jet_features"][:, 0]
        assert 850 < np.median(pt) < 1100, (jt, np.median(pt))
        assert np.all(np.abs(s["jet_features"][:, 1]) < 2.5)


def test_constituent_kinematics(samples):
    for jt, s in samples.items():
        pf, jf = s["particle_features"], s["jet_features"]
        mask = pf[..., 3] == 1
        full = jf[:, 3] <= 150  # jets whose constituents all fit in 150 slots
        # sum of |pT_i| >= |sum pT_i| = pT_jet, close to it for a collimated R = 0.8 jet
        sums = pf[full, :, 2].sum(axis=1)
        assert np.all(sums >= 1 - 1e-5) and np.all(sums < 1.1), (jt, sums.min(), sums.max())
        # sorted by decreasing pT, masks match the zero padding
        assert np.all(np.diff(pf[..., 2], axis=1) <= 0)
        assert np.array_equal(mask.sum(1), np.minimum(jf[:, 3], 150))
        assert np.all(pf[~mask] == 0)
        # constituents stay within the jet radius in (eta, phi).  anti-kT clusters in rapidity y,
        # and for soft massive hadrons |eta| >> |y|, so a few spill beyond R = 0.8 in eta
        # (measured, seed 11, 100 jets per class: 1.3-1.8 % of constituents, 0.03-0.06 % of the
        # pT; JetNet shows the same: its FPND normalisation uses max |etarel| = 1.62)
        dr = np.hypot(pf[..., 0], pf[..., 1])[mask]
        pt = pf[..., 2][mask]
        assert np.mean(dr > 0.8) < 0.03, (jt, np.mean(dr > 0.8))
        assert pt[dr > 0.8].sum() / pt.sum() < 0.002, jt
        assert np.all(np.abs(pf[..., 1]) < np.pi)


def _arrays(path):
    with h5py.File(path) as f:
        return f["particle_features"][:], f["jet_features"][:]


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    cfg = JetSimConfig("w")
    a = simulate_jets(24, cfg, tmp_path / "a.h5", seed=5, workers=1, chunk_size=6, progress=False)
    b = simulate_jets(24, cfg, tmp_path / "b.h5", seed=5, workers=2, chunk_size=6, progress=False)
    c = simulate_jets(24, cfg, tmp_path / "c.h5", seed=6, workers=1, chunk_size=6, progress=False)
    (pa, ja), (pb, jb), (pc, _) = _arrays(a), _arrays(b), _arrays(c)
    assert pa.tobytes() == pb.tobytes() and ja.tobytes() == jb.tobytes()
    assert pa.tobytes() != pc.tobytes()
    assert validate_file(a).ok
    attrs = read(a).attrs
    assert attrs["jet_type"] == "w" and attrs["seed"] == 5 and "Pythia" in attrs["generator"]
    assert "WeakDoubleBoson:ffbar2WW = on" in attrs["pythia_settings"]
    assert not (tmp_path / "a.h5.chunks").exists()


def test_resume_redoes_only_missing_chunks(tmp_path, monkeypatch):
    cfg = JetSimConfig("z")
    ref = simulate_jets(20, cfg, tmp_path / "ref.h5", seed=3, chunk_size=5, progress=False)
    calls = []
    real = jets_module.simulate_jet_chunk

    def flaky(config, seed, n):
        calls.append(seed)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is interrupted during the third chunk
        return real(config, seed, n)

    monkeypatch.setattr(jets_module, "simulate_jet_chunk", flaky)
    out = tmp_path / "run.h5"
    with pytest.raises(KeyboardInterrupt):
        simulate_jets(20, cfg, out, seed=3, chunk_size=5, progress=False)
    assert not out.exists() and len(list((tmp_path / "run.h5.chunks").glob("chunk_*.npz"))) == 2
    calls.clear()
    simulate_jets(20, cfg, out, seed=3, chunk_size=5, resume=True, progress=False)
    assert len(calls) == 2  # only the two unfinished chunks ran again
    assert _arrays(out)[0].tobytes() == _arrays(ref)[0].tobytes()


def test_resume_refuses_chunks_of_other_settings(tmp_path):
    def fn(seed, n):
        return {"x": np.random.default_rng(seed).random((n, 2))}

    first = run_chunks(fn, 10, 1, tmp_path / "w", {"a": 1}, chunk_size=5, progress=False)
    with pytest.raises(ResumeMismatchError, match=r"seed \(--seed\): chunks 1, this run 2"):
        run_chunks(fn, 10, 2, tmp_path / "w", {"a": 1}, chunk_size=5, resume=True, progress=False)
    with pytest.raises(ResumeMismatchError, match=r"a: chunks 1, this run 3"):
        run_chunks(fn, 10, 1, tmp_path / "w", {"a": 3}, chunk_size=5, resume=True, progress=False)
    again = run_chunks(fn, 10, 1, tmp_path / "w", {"a": 1}, chunk_size=5, resume=True, progress=False)
    assert np.array_equal(first["x"], again["x"])
    other = run_chunks(fn, 10, 2, tmp_path / "w", {"a": 1}, chunk_size=5, progress=False)  # no --resume: afresh
    assert not np.array_equal(first["x"], other["x"])


def test_cli_jets_into_an_output_another_run_holds_are_refused(tmp_path):
    out = tmp_path / "g.h5"
    holder = hold_run_lock(out)
    try:
        res = CliRunner().invoke(cli, ["simulate", "jetnet30", "-n", "4", "-o", str(out)])
        assert_one_line_error(res, 1, f"{out}: another pcbench run holds it (pid {holder.pid}", "pass another -o")
        assert sorted(p.name for p in tmp_path.iterdir()) == [".g.h5.lock"]  # the holder's; no .chunks
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the run that held it


def test_cli_simulate_to_cache_then_load(tmp_path):
    res = CliRunner().invoke(cli, ["simulate", "jetnet30", "--jet-type", "q", "-n", "20", "--seed", "2",
                                   "--cache-dir", str(tmp_path), "--chunk-size", "10"])
    assert res.exit_code == 0, res.output
    jets = load("jetnet30-sim:q", "test", cache=Cache(tmp_path))
    assert len(jets) == 3 and jets.num_particles == 30 and (jets.jet_type == 1).all()
    res = CliRunner().invoke(cli, ["validate", str(tmp_path / "jetnet30-sim" / "q.hdf5")])
    assert res.exit_code == 0 and "valid" in res.output


def test_fetch_of_jetnet_offline_points_to_simulate(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(DataUnavailableError, match=r"pcbench simulate jetnet150 --jet-type t"):
        fetch(["jetnet150:t"], Cache(tmp_path), FetchOptions(mirror=closed), progress=False)
    with pytest.raises(DataUnavailableError, match="cannot be fetched automatically.*pcbench simulate jetnet30"):
        fetch(["jetnet30-sim:g"], Cache(tmp_path), progress=False)
