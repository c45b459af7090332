"""Shower metrics: hand-computed features, separation power, PRDC, ILD observables and W1 scores,
classifiers, and the suites end to end on parameterised showers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.data import formats
from pcbench.data.containers import VoxelShowerSet
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk, simulate_showers
from pcbench.errors import PcbenchError
from pcbench.evaluate import evaluate
from pcbench.geometry import CylindricalGeometry, CylindricalLayer, Hits, get_geometry, project
from pcbench.metrics import calo_features, ild_observables
from pcbench.metrics.dnn_classifier import DNNSettings, dnn_classifier_test
from pcbench.metrics.prdc import kth_neighbour_distance, prdc
from pcbench.metrics.separation import separation_power, separation_power_samples

TINY = CylindricalGeometry("tiny", (CylindricalLayer(0, (0.0, 1.0, 3.0), 1), CylindricalLayer(1, (0.0, 2.0, 4.0), 4)))


def test_one_voxel_shower_has_its_centre_there_and_zero_width():
    v = np.zeros((2, TINY.n_voxels))
    t = TINY.voxel_table
    k = 2 + 3 * 2 + 1  # layer 1, alpha bin 3 (centre 3pi/4 - pi/4... ), r bin 1
    v[0, k] = 5.0
    v[1, 0], v[1, 1] = 1.0, 3.0  # layer 0: r centres 0.5 and 2
    f = calo_features.high_level_features(v, np.array([10.0, 8.0]), TINY)
    assert f["E_tot"].tolist() == [5.0, 4.0] and f["E_ratio"].tolist() == [0.5, 0.5]
    assert f["E_layer"].tolist() == [[0.0, 5.0], [4.0, 0.0]]
    assert f["EC_r"][0, 1] == pytest.approx(t["r"][k]) == 3.0 and f["width_r"][0, 1] == 0.0
    assert f["EC_eta"][0, 0] == pytest.approx(t["x"][k]) and f["EC_phi"][0, 0] == pytest.approx(t["y"][k])
    assert f["width_eta"][0, 0] == 0.0 and f["width_phi"][0, 0] == 0.0
    assert f["EC_eta"].shape == (2, 1)  # only layer 1 is binned in alpha
    # layer 0 of shower 1: <r> = (0.5 + 6) / 4, width^2 = (0.25 + 12) / 4 - <r>^2
    assert f["EC_r"][1, 0] == pytest.approx(6.5 / 4)
    assert f["width_r"][1, 0] == pytest.approx(np.sqrt(12.25 / 4 - (6.5 / 4) ** 2))
    assert f["sparsity"][0].tolist() == [1.0, 7 / 8] and f["EC_r"][1, 1] == 0.0  # an empty layer: 0, as the challenge
    x = calo_features.classifier_inputs_high(f, np.array([10.0, 8.0]))
    assert x.shape == (2, 1 + 2 + 4 * 1 + 1 + 2 + 2 + 2) and x[0, 0] == 1.0


def test_separation_power_limits_and_error():
    assert separation_power([1, 2, 3], [2, 4, 6]) == 0.0
    assert separation_power([1, 2, 0, 0], [0, 0, 5, 1]) == pytest.approx(1.0)
    assert separation_power([1, 1], [1, 3]) == pytest.approx(0.5 * ((0.5 - 0.25) ** 2 / 0.75 + (0.5 - 0.75) ** 2 / 1.25))
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    v, e = separation_power_samples(a, a.copy(), np.linspace(-4, 4, 41))
    assert v == 0.0 and 0 < e < 0.02


def test_prdc_agrees_with_the_prdc_package():
    prdc_pkg = pytest.importorskip("prdc")
    rng = np.random.default_rng(0)
    real, gen = rng.normal(size=(600, 6)), rng.normal(0.3, 1.2, size=(500, 6))
    ours = prdc(real, gen, 5, chunk=97)
    ref = prdc_pkg.compute_prdc(real, gen, 5)
    for k in ("precision", "recall", "density", "coverage"):
        assert ours[k][0] == pytest.approx(ref[k], abs=1e-12) and ours[k][1] > 0


def test_kth_neighbour_from_the_upper_blocks_equals_the_whole_matrix_sorted():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(230, 7))
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    expected = np.sort(d, axis=1)[:, 5]  # column 0: the row itself
    for chunk in (16, 97, 230, 1000):  # blocks that do not divide 230, one block, bigger than N
        np.testing.assert_allclose(kth_neighbour_distance(x, 5, chunk), expected, rtol=1e-12)
    np.testing.assert_allclose(kth_neighbour_distance(x[:3], 2), np.sort(d[:3, :3], axis=1)[:, 2], rtol=1e-12)
    with pytest.raises(ValueError, match="need more than 3 rows"):
        kth_neighbour_distance(x[:3], 3)


def test_ild_observables_by_hand():
    g = get_geometry("ild-ecal")
    _, nu, nv = g.shape
    i0, j0 = int((0 + 200) // g.cell_size), int((40 + 160) // g.cell_size)  # the cell holding (0, 40)
    cells = np.array([(29 * nu + i0) * nv + j0, (3 * nu + i0 + 3) * nv + j0])
    hits = Hits(np.array([0, 2, 2]), cells, np.array([2.0, 6.0]))
    obs = ild_observables.ild_observables(hits, np.array([1000.0, 1000.0]), g)
    c = g.cell_centres[cells]
    assert obs["n_hits"].tolist() == [2, 0] and obs["e_vis"][0] == 8.0 and obs["e_ratio"][0] == 0.008
    assert obs["cog_x"][0] == pytest.approx((2 * c[0, 0] + 6 * c[1, 0]) / 8) and np.isnan(obs["cog_x"][1])
    assert obs["e_long"][0, 9] == 2.0 and obs["e_long"][0, 0] == 6.0  # layer 29 is in the last group
    r = np.hypot(c[:, 0], c[:, 2] - 40.0)
    ring = np.searchsorted(ild_observables.RADIAL_EDGES, r, side="right") - 1
    assert obs["e_radial"][0, ring[0]] + obs["e_radial"][0, ring[1]] == 8.0 and obs["e_radial"].sum() == 8.0
    assert obs["e_cell"].tolist() == [6.0, 2.0]  # by layer: the reference's order


def test_w1_scores_are_zero_for_identical_samples_and_follow_the_grouping():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.3, (400, 26))
    s = ild_observables.w1_scores(x, x.copy(), batches=4, batch_size=100)
    assert all(v == (0.0, 0.0) for v in s.values()) and len(s) == 8
    y = x.copy()
    y[:, 6:16] += 0.5
    s = ild_observables.w1_scores(x, y, batches=4, batch_size=100, normalisation="standardise")
    assert s["e_long"][0] == pytest.approx(0.5 / 0.3, rel=0.15) and s["n_hits"][0] == 0.0
    # batches larger than the sample shrink to fit: 4 x 200 > 400 rows gives the 4 x 100 result
    assert ild_observables.w1_scores(x, y, batches=4, batch_size=200, normalisation="standardise") == s


def test_w1_scores_keep_empty_showers_and_leave_out_only_their_undefined_centre_of_gravity():
    """An empty shower has zero hits and energies (they count) and no centre of gravity (left out)."""
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 0.3, (400, 26))
    y = x.copy()
    y[-1] = 0.0  # one empty generated shower: n_hits, energies 0 ...
    y[-1, [0, 1, 2, 5]] = np.nan  # ... cog and its first cell energy undefined
    s = ild_observables.w1_scores(x, y, batches=4, batch_size=100)
    # cog columns: 399 defined generated rows -> batches of 99; the first 396 rows are identical
    assert s["cog_x"] == (0.0, 0.0)
    # n_hits: all 400 rows; the last batch differs by one row moved to 0: W1 = |x - 0| / 100 / max|x|
    expect = abs(x[-1, 3]) / 100 / np.abs(x[:, 3]).max()
    batch_w1 = np.array([0, 0, 0, expect])
    assert s["n_hits"][0] == pytest.approx(batch_w1.mean()) and s["n_hits"][1] == pytest.approx(batch_w1.std())


def test_classifier_auc_near_half_for_identical_and_one_for_separate_samples():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(1500, 4)).astype(np.float32)
    fast = DNNSettings.named("fast")
    same = dnn_classifier_test(a, rng.permutation(a), dataclasses.replace(fast, epochs=4))
    assert abs(same.auc - 0.5) < 0.08 and same.jsd < 0.05
    far = dnn_classifier_test(a, a + 3.0, dataclasses.replace(fast, epochs=4))
    assert far.auc > 0.99 and far.jsd > 0.8
    again = dnn_classifier_test(a, a + 3.0, dataclasses.replace(fast, epochs=4))
    assert again == far  # bit-identical for a seed


def _ild_obs(radial_scale: float, n: int, seed: int):
    t = SHOWER_TARGETS["ild-photons"]
    t = dataclasses.replace(t, model=dataclasses.replace(t.model, radial_scale=radial_scale))
    d = simulate_shower_chunk(t, seed, n)
    g = get_geometry("ild-ecal")
    proj = project(d["points"], g, threshold=0.1, output="sparse")
    return ild_observables.ild_observables(proj.hits, d["incident_energy"].astype(float), g), d["incident_energy"]


def test_two_moliere_radii_are_told_apart():
    a, ea = _ild_obs(1.0, 300, 1)
    b, _ = _ild_obs(1.0, 300, 2)
    c, ec = _ild_obs(0.6, 300, 3)
    m = {k: ild_observables.observable_matrix(o) for k, o in (("a", a), ("b", b), ("c", c))}
    truth = ild_observables.w1_scores(m["a"], m["b"], batches=3, batch_size=100)
    narrow = ild_observables.w1_scores(m["a"], m["c"], batches=3, batch_size=100)
    assert narrow["e_radial"][0] > 4 * truth["e_radial"][0]
    xa = np.column_stack([np.log10(ea), np.delete(m["a"], 5, 1)])
    xc = np.column_stack([np.log10(ec), np.delete(m["c"], 5, 1)])
    mu, sd = xa.mean(0), xa.std(0) + 1e-12
    res = dnn_classifier_test((xa - mu) / sd, (xc - mu) / sd, dataclasses.replace(DNNSettings.named("fast"), epochs=8))
    assert res.auc > 0.95


@pytest.fixture(scope="module")
def shower_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("showers")
    files = {"cc_ref": simulate_showers("calochallenge-2", 500, d / "cc_ref.h5", seed=1, chunk_size=100, progress=False),
             "cc_gen": simulate_showers("calochallenge-2", 200, d / "cc_gen.h5", seed=2, chunk_size=100, progress=False),
             "ild_ref": simulate_showers("ild-photons", 400, d / "ild_ref.h5", seed=1, chunk_size=100, progress=False),
             "ild_gen": simulate_showers("ild-photons", 200, d / "ild_gen.h5", seed=2, chunk_size=100, progress=False)}
    return d, files


def test_calochallenge_suite_end_to_end_is_reproducible_and_streams(shower_files, tmp_path):
    d, f = shower_files
    metrics = ("sep_e_ratio", "sep_e_layer", "sep_cell", "sep_width_r", "kpd", "auc_high", "precision", "coverage")
    r1 = evaluate(f["cc_gen"], str(f["cc_ref"]), profile="fast", metrics=metrics, out_dir=tmp_path, plots=True)
    assert set(r1.metrics) == {"sep_e_ratio", "sep_e_layer", "sep_cell", "sep_width_r", "kpd", "auc_high", "jsd_high",
                               "precision", "recall", "density", "coverage"}
    for m in r1.metrics.values():
        assert np.isfinite(m.value) and np.isfinite(m.error) and m.truth is not None
    assert r1.provenance["geometry"] == "calochallenge-2" and r1.provenance["n_showers"] == 200
    assert r1.provenance["samples_parameterised"] and r1.provenance["classifier"] == "fast"
    assert 0.3 < r1.metrics["auc_high"].value < 0.7  # the same model, other seed
    assert (tmp_path / "cc_gen.html").exists() and (tmp_path / "cc_gen_plots" / "mean_image.png").exists()
    from pcbench.evaluate.calochallenge import CaloSuiteConfig
    small = dataclasses.replace(CaloSuiteConfig.named("fast"), chunk_rows=37, metrics=metrics)
    from pcbench.evaluate.calochallenge import calochallenge_suite
    from pcbench.evaluate.protocol import half_rows
    from pcbench.data.sources import ShowerSource
    halves = half_rows(200, 500, 42)
    r2, _, _ = calochallenge_suite(ShowerSource.of(f["cc_gen"]), ShowerSource.of(f["cc_ref"]), halves,
                                   get_geometry("calochallenge-2"), small)
    for k, m in r1.metrics.items():  # other chunks: the same up to BLAS blocking in the last bits
        assert r2[k].value == pytest.approx(m.value, rel=1e-9, abs=1e-15) and r2[k].error == pytest.approx(m.error, rel=1e-9, abs=1e-15)
    r3 = evaluate(f["cc_gen"], str(f["cc_ref"]), profile="fast", metrics=metrics)
    assert r3.metrics == r1.metrics  # bit-identical for a seed


def test_ild_suite_cli_prints_the_table_with_truth(shower_files, tmp_path):
    d, f = shower_files
    res = CliRunner().invoke(cli, ["evaluate", str(f["ild_gen"]), "--reference", str(f["ild_ref"]), "--profile", "fast",
                                   "--out", str(tmp_path), "--metrics", "w1_n_hits,w1_e_ratio,w1_e_long,w1_e_radial,w1_cog_y"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # the terminal wraps at 80 columns
    assert "w1_e_radial" in text and "PARAMETERISED" in text and "200 generated showers on ild-ecal" in text
    assert "Protocol: halves of one reference file (not the papers' protocol)" in text
    rec = json.loads((tmp_path / "ild_gen.json").read_text())
    assert rec["provenance"]["w1_batch_size"] == 40 and rec["metrics"]["w1_e_long"]["truth"] is not None


def test_incident_energy_mismatch_is_refused(shower_files, tmp_path):
    d, f = shower_files
    data = formats.read(f["cc_gen"])
    shifted = VoxelShowerSet(data.voxels, data.incident_energy * 3, "calochallenge-2")
    bad = formats.write(tmp_path / "bad.h5", shifted)
    with pytest.raises(PcbenchError, match="incident energies do not follow the reference"):
        evaluate(bad, str(f["cc_ref"]), profile="fast", metrics=("sep_e_ratio",))
    r = evaluate(bad, str(f["cc_ref"]), profile="fast", metrics=("sep_e_ratio",), energy_check=False)
    # E_tot / E_inc near 1/3 lies below the challenge's bins [0.5, 1.5]: an empty histogram scores 1/2
    assert r.provenance["energy_check"] == "off" and r.metrics["sep_e_ratio"].value == pytest.approx(0.5)


def test_published_tables_are_labelled():
    res = CliRunner().invoke(cli, ["published", "calochallenge-2"])
    assert res.exit_code == 0 and "GEANT4" in res.output and "published numbers" in res.output
    assert "CaloDREAM" in res.output and "10.78 ± 0.79" in res.output  # FPD x1e3 of GEANT4
    res = CliRunner().invoke(cli, ["published", "ild-photons"])
    assert "CaloClouds II (CM)" in res.output and "0.923 ± 0.001" in res.output
