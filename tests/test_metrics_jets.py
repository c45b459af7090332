"""Jet metrics: hand-computed cases, agreement with scipy and energyflow, seeds, the suite."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import linalg
from scipy.stats import wasserstein_distance

from pcbench.cli import cli
from pcbench.data import JetSet, write
from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.evaluate import EvaluationResult
from pcbench.evaluate.jets import JetSuiteConfig, jet_features, jet_suite
from pcbench.metrics import classifier, divergence, frechet, jet_observables, kernel, wasserstein


def two_particle_jet(dphi: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """One jet of two massless particles, ptrel 0.5 each, at eta 0 and phi +-dphi/2; 3 padded slots."""
    p = np.zeros((1, 5, 3))
    p[0, :2] = [[0.0, -dphi / 2, 0.5], [0.0, dphi / 2, 0.5]]
    return p, np.array([[True, True, False, False, False]])


@pytest.fixture(scope="module")
def jets() -> dict[str, JetSet]:
    g = simulate_jet_chunk(JetSimConfig("g"), seed=21, n=300)
    t = simulate_jet_chunk(JetSimConfig("t"), seed=22, n=300)
    return {k: JetSet.from_jetnet(v["particle_features"], v["jet_features"], k) for k, v in (("g", g), ("t", t))}


def test_two_particle_jet_mass_is_analytic():
    # m^2 = 2 pt1 pt2 (cosh deta - cos dphi) = 0.5 (1 - cos 0.2) = sin(0.1)^2 (relative to pT_jet = 1)
    p, m = two_particle_jet(0.2)
    kin = jet_observables.jet_kinematics(p, m)
    np.testing.assert_allclose(kin["mass"], [np.sin(0.1)], rtol=1e-12)
    np.testing.assert_allclose(kin["pt"], [np.cos(0.1)], rtol=1e-12)
    assert kin["multiplicity"][0] == 2


def test_nsubjettiness_hand_computed():
    # two particles: the 1-axis is the jet axis (phi 0), each particle 0.1 away -> tau1 = 0.1 / 0.8;
    # with 2 axes on the particles tau2 = 0; fewer particles than 3 axes -> tau3 = 0
    p, m = two_particle_jet(0.2)
    tau = jet_observables.nsubjettiness(p, m, (1, 2, 3), beta=1.0, r0=0.8)
    np.testing.assert_allclose(tau[0], [0.1 / 0.8, 0.0, 0.0], atol=1e-12)


def test_efps_agree_with_energyflow(jets):
    import energyflow as ef

    jet_set = jets["t"].subset(slice(0, 120))
    mine = jet_observables.efps(jet_set.particles, jet_set.mask, chunk=50)
    efpset = ef.EFPSet(("d<=", 4), measure="hadr", beta=1, normed=None, coords="ptyphim")
    ref = efpset.batch_compute(jet_set.particle_features[..., [2, 0, 1]].astype(np.float64), 1)
    assert mine.shape == (120, 36)
    np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-300)
    # the W1EFP subset sits where energyflow's own (n==4, d==4, prime) set says
    sub = ef.EFPSet(("n==", 4), ("d==", 4), ("p==", 1), measure="hadr", beta=1, normed=None, coords="ptyphim")
    ref5 = sub.batch_compute(jet_set.particle_features[..., [2, 0, 1]].astype(np.float64), 1)
    np.testing.assert_allclose(mine[:, jet_observables.EFP_W1_INDICES()], ref5, rtol=1e-9)


def test_jet_features_in_chunks_are_the_whole_computation_bit_for_bit(jets):
    whole = jet_features(jets["t"], chunk=10**6)
    parts = jet_features(jets["t"], chunk=7)  # 300 jets: 42 full chunks and one of 6
    assert whole.keys() == parts.keys() and whole["efps"].shape == (300, 36)
    assert all(np.array_equal(whole[k], parts[k]) for k in whole)
    empty = jet_features(jets["t"].subset(slice(0, 0)))
    assert empty["efps"].shape == (0, 36) and len(empty["mass"]) == 0


def test_w1_of_a_shift_is_the_shift_and_agrees_with_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    assert wasserstein.w1(x, x + 0.3) == pytest.approx(0.3, abs=1e-12)
    assert wasserstein.w1(x, x) == 0.0
    # batched: the same draws as scipy on the same indices
    means, stds = wasserstein.w1_batched(x[:, None], (x + 0.3)[:, None], num_eval_samples=4000, num_batches=3, seed=7)
    r = np.random.default_rng(7)
    expect = []
    for _ in range(3):
        i, j = r.choice(5000, 4000), r.choice(5000, 4000)
        expect.append(wasserstein_distance(x[i], x[j] + 0.3))
    assert means[0] == pytest.approx(np.mean(expect), abs=1e-14) and stds[0] == pytest.approx(np.std(expect), abs=1e-14)
    assert abs(means[0] - 0.3) < 0.05


def test_w1_particles_use_only_real_particles():
    p = np.zeros((2, 3, 1))
    p[:, 0, 0] = 1.0
    mask = np.array([[True, False, False]] * 2)
    means, _ = wasserstein.w1_batched(p, p + 0.5 * mask[..., None], 10, 2, real_mask=mask, gen_mask=mask)
    assert means[0] == pytest.approx(0.5)  # padded zeros would otherwise pull it down


def test_frechet_distance_analytic():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    # diagonal covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2
    expect = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert frechet.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expect, rel=1e-12)
    # a general pair agrees with the sqrtm form used by the reference
    rng = np.random.default_rng(1)
    s1, s2 = np.cov(rng.normal(size=(500, 6)), rowvar=False), np.cov(rng.normal(size=(500, 6)) * 2, rowvar=False)
    ref = np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert frechet.frechet_distance(np.zeros(6), s1, np.zeros(6), s2) == pytest.approx(ref, rel=1e-9)
    # a constant feature (singular S1: no Cholesky factor) takes the symmetric-square-root branch
    z = rng.normal(size=(500, 6))
    z[:, 2] = 0.3
    s3 = np.cov(z, rowvar=False)
    ref = np.trace(s3) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s3 @ s2).real)
    # sqrtm puts the product's rounding-level zero eigenvalue (~ n eps |S3 S2|) under a square root:
    # the reference itself is uncertain by up to 2 sqrt(n eps |S3 S2|) (~5e-8 here; its size depends
    # on the CPU's BLAS kernels), pcbench drops the null space instead
    tol = 2 * np.sqrt(6 * np.finfo(float).eps * np.linalg.norm(s3 @ s2, 2))
    assert frechet.frechet_distance(np.zeros(6), s3, np.zeros(6), s2) == pytest.approx(ref, abs=tol)
    assert frechet.frechet_distance(np.zeros(6), s2, np.zeros(6), s3) == pytest.approx(ref, abs=tol)  # S2 singular
    eig = np.linalg.eigvals(s3 @ s2).real
    eig[eig < 6 * np.finfo(float).eps * np.linalg.norm(s3 @ s2, 2)] = 0.0  # the null space, exactly
    exact = np.trace(s3) + np.trace(s2) - 2 * np.sqrt(eig).sum()
    assert frechet.frechet_distance(np.zeros(6), s3, np.zeros(6), s2) == pytest.approx(exact, rel=1e-9)


def test_fpd_extrapolation_of_distances_far_from_one():
    """jetnet's bounded curve_fit starts at (1, 1) and does not move for distances of order 1e20
    (it returned FPD = 1.0, error 0, for a diverged generator); the fit is the exact non-negative
    least-squares line there, and non-finite distances give inf, not a number."""
    from scipy.optimize import curve_fit

    t = 1 / np.array([1000.0, 2000.0, 3000.0])
    means = 5e20 + 1e23 * t  # exactly on a line: intercept 5e20
    stuck = curve_fit(lambda x, c, s: c + s * x, t, means, bounds=([0, 0], [np.inf, np.inf]))[0]
    assert stuck.tolist() == [1.0, 1.0]  # what the plain bounded fit gives
    c, err = frechet._intercept_fit(t, means)
    assert c == pytest.approx(5e20, rel=1e-9) and err < 1e-6 * c
    near = 0.02 + 3.0 * t + np.array([1e-4, -2e-4, 1e-4])  # an ordinary case: curve_fit's own answer, unchanged
    assert frechet._intercept_fit(t, near)[0] == curve_fit(lambda x, c, s: c + s * x, t, near,
                                                           bounds=([0, 0], [np.inf, np.inf]))[0][0]
    assert frechet._intercept_fit(t, np.array([1.0, np.inf, 2.0]))[0] == np.inf


def test_fpd_and_kpd_see_a_shift_and_not_a_resample():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6000, 4)), rng.normal(size=(6000, 4))
    args = dict(min_samples=1000, max_samples=3000, num_batches=5, num_points=4)
    same, err = frechet.fpd(x, y, **args)
    assert same < 0.01 and err < 0.01
    shifted, _ = frechet.fpd(x, y + 0.5, **args)
    assert shifted > 10 * same + 0.05
    k_same, k_err = kernel.kpd(x, y, num_batches=5, batch_size=1000)
    assert abs(k_same) < 3 * k_err + 1e-3
    assert kernel.kpd(x, y + 0.5, num_batches=5, batch_size=1000)[0] > 0.05


def test_mmd_unbiased_matches_the_formula():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.2
    k = lambda a, b: (a @ b.T / 3 + 1) ** 4  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    expect = ((kxx.sum() - np.trace(kxx)) / (40 * 39) + (kyy.sum() - np.trace(kyy)) / (30 * 29) - 2 * kxy.mean())
    assert kernel.mmd_poly_unbiased(x, y) == pytest.approx(expect, rel=1e-12)


def test_weighted_and_tiled_forms_equal_the_repeated_rows():
    """KPD and FPD work on the distinct rows of a draw with replacement, weighted by their counts,
    in tiles of kernel.BLOCK rows: the values of the plain formulas on the repeated rows."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(700, 5)), rng.normal(size=(650, 5)) + 0.1  # more rows than one 512-row tile
    ra, rb = rng.choice(700, 1300), rng.choice(650, 900)
    a, b = x[ra], y[rb]
    k = lambda p, q: (p @ q.T / 5 + 1) ** 4  # noqa: E731
    kaa, kbb = k(a, a), k(b, b)
    plain = ((kaa.sum() - np.trace(kaa)) / (1300 * 1299) + (kbb.sum() - np.trace(kbb)) / (900 * 899)
             - 2 * k(a, b).mean())
    (ua, wa), (ub, wb) = kernel._distinct(x, ra), kernel._distinct(y, rb)
    assert wa.sum() == 1300 and len(ua) < 700 and len(ua) == len(np.unique(ra))
    assert kernel.mmd_poly_unbiased(ua, ub, wx=wa, wy=wb) == pytest.approx(plain, rel=1e-9)
    assert kernel.mmd_poly_unbiased(a, b) == pytest.approx(plain, rel=1e-9)
    mean, cov = frechet._mean_cov(x - x.mean(0), ra, x.mean(0))
    assert np.allclose(mean, a.mean(0), rtol=0, atol=1e-13) and np.allclose(cov, np.cov(a, rowvar=False), atol=1e-13)


def test_classifier_auc_half_for_same_one_for_different():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(1500, 3)), rng.normal(size=(1500, 3))
    same = classifier.hl_classifier_auc(a, b, k=3)
    assert abs(same[0] - 0.5) < 0.05 and len(same[2]) == 3
    diff = classifier.hl_classifier_auc(a, b + 3.0, k=3)
    assert diff[0] > 0.97


def test_deepsets_auc_on_particle_clouds(jets):
    g = jets["g"].particle_features
    moved = g[150:].copy()
    moved[..., 1] += 0.3 * moved[..., 3]  # every real particle moved by 0.3 in phi: clearly different
    auc = classifier.deepsets_classifier_auc(g[:150], moved, k=3, epochs=8, batch_size=32)
    assert auc[0] > 0.95
    same = classifier.deepsets_classifier_auc(g[:150], g[150:], k=3, epochs=8, batch_size=32)
    assert abs(same[0] - 0.5) < 0.12


def test_kl_divergence_cases():
    rng = np.random.default_rng(5)
    x = rng.normal(size=4000)
    assert divergence.kl_divergence(x, x) == 0.0
    assert divergence.kl_divergence(x, x + 10.0) > 5.0  # disjoint supports
    value, err = divergence.kl_divergence_bootstrap(x, rng.normal(size=4000), n_boot=5)
    assert value < 0.05 and err > 0


def test_suite_is_bit_identical_for_a_seed_and_orders_models(jets):
    cfg = JetSuiteConfig.named("fast")
    gen = jets["t"].subset(slice(0, 150))
    ref = jets["g"]
    m1, s1, _ = jet_suite(gen, ref, cfg, "g")
    m2, _, _ = jet_suite(gen, ref, cfg, "g")
    assert repr([(k, v.value, v.error, v.truth) for k, v in m1.items()]) == repr([(k, v.value, v.error, v.truth) for k, v in m2.items()])
    assert s1["n_jets"] == 150
    # top jets posing as gluon jets are far worse than the truth-vs-truth floor
    for name in ("w1m", "fpd", "auc_hl"):
        assert m1[name].value > m1[name].truth + 3 * max(m1[name].error, 1e-12), name


def test_evaluate_cli_end_to_end(tmp_path, jets):
    write(tmp_path / "ref.h5", jets["g"])
    write(tmp_path / "gen.h5", jets["g"].subset(slice(0, 120)), {"generation_time_per_object_s": 1e-4})
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "gen.h5"), "--reference", str(tmp_path / "ref.h5"),
                                   "--profile", "fast", "--model-name", "copy", "--out", str(tmp_path / "out"), "--plots"])
    assert res.exit_code == 0, res.output
    assert "w1m" in res.output and "truth vs truth" in res.output
    pngs = sorted(p.name for p in (tmp_path / "out" / "copy_plots").glob("*.png"))
    assert len(pngs) == 14 and "jet_mass.png" in pngs and "efp_5.png" in pngs  # 13 observables
    assert "correlation_difference.png" in pngs  # and the correlation metrics' difference matrix
    assert (tmp_path / "out" / "copy_plots" / "tau21.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "out" / "copy.html").read_text()
    assert all(f"copy_plots/{p}" in page for p in pngs) and "truth vs truth" in page
    record = EvaluationResult.read(tmp_path / "out" / "copy.json")
    assert set(record.metrics) >= {"w1m", "w1p", "w1efp", "fpd", "kpd", "cov", "mmd", "auc_hl", "auc_pl", "kl_tau21"}
    prov = record.provenance
    assert prov["suite_version"] == "jets-1" and prov["generation_time_per_object_s"] == 1e-4
    assert len(prov["samples_md5"]) == 32 and prov["reference_split"] == "file"
    assert EvaluationResult.from_json(record.to_json()) == record
    # a bad sample file is refused with its problems named
    bad = tmp_path / "bad.h5"
    pf = jets["g"].particle_features[:20].copy()
    pf[0, 0, 2] = np.nan
    import h5py

    with h5py.File(bad, "w") as f:
        f["particle_features"], f["jet_features"] = pf, jets["g"].jets[:20]
    res = CliRunner().invoke(cli, ["evaluate", str(bad), "--reference", str(tmp_path / "ref.h5")])
    assert res.exit_code == 1 and "NaN or inf" in res.output
    json.loads((tmp_path / "out" / "copy.json").read_text())
