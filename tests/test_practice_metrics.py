"""The 2026 evaluation practice's pure functions: correlations, response and resolution, bins,
null-distribution p-values, KS tests and the equivalent reference statistics (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pcbench.errors import UsageError
from pcbench.evaluate.binning import bin_edges, bin_index, parse_energy_bins, parse_jet_bins
from pcbench.metrics.correlation import correlation_difference, pearson_matrix
from pcbench.metrics.null import badness, equivalent_size, ks_tests, null_test
from pcbench.metrics.response import fit_resolution, response_difference, response_per_bin


def _correlated(n: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    z = rng.standard_normal((n, 3))
    x1 = rho * z[:, 0] + np.sqrt(1 - rho * rho) * z[:, 1]
    return np.column_stack([z[:, 0], x1, z[:, 2]])


def test_pearson_matrix_hand_example_and_constant_column():
    x = np.array([[1.0, 2.0, 5.0], [2.0, 4.0, 5.0], [3.0, 5.0, 5.0], [4.0, 9.0, 5.0]])
    c = pearson_matrix(x)
    # hand: x0 = 1..4, x1 = 2, 4, 5, 9; cov = 5.5/4... r = 0.9563
    a, b = x[:, 0] - 2.5, x[:, 1] - 5.0
    assert c[0, 1] == pytest.approx(a @ b / np.sqrt((a @ a) * (b @ b)), abs=1e-14)
    assert c[0, 2] == 0.0 and c[1, 2] == 0.0 and c[2, 2] == 1.0  # the constant column has no correlation


def test_correlation_difference_is_zero_for_identical_samples_and_recovers_a_planted_one():
    rng = np.random.default_rng(1)
    x = _correlated(20_000, 0.0, rng)
    same = correlation_difference(x, x.copy(), n_boot=3)
    assert same.max_abs == 0.0 and same.mean_abs == 0.0
    planted = correlation_difference(x, _correlated(20_000, 0.6, rng), n_boot=5)
    assert planted.difference[0, 1] == pytest.approx(0.6, abs=0.03)  # the planted correlation, recovered
    assert planted.max_abs == pytest.approx(0.6, abs=0.03)
    assert planted.mean_abs == pytest.approx(0.6 / 3, abs=0.02)  # one pair of three differs
    assert 0 < planted.max_abs_error < 0.02


def test_response_and_resolution_fit_recover_known_terms():
    rng = np.random.default_rng(7)
    a_true, b_true, r_true = 0.16, 0.012, 0.93  # stochastic [sqrt(GeV)], constant, response
    e = np.exp(rng.uniform(np.log(1e3), np.log(1e5), 60_000))  # MeV
    sigma = np.sqrt(a_true ** 2 / (e / 1e3) + b_true ** 2)
    ratio = r_true * (1 + sigma * rng.standard_normal(len(e)))  # smeared by hand
    edges = np.geomspace(1e3, 1e5, 9)
    bins = response_per_bin(ratio, e, edges)
    assert all(b is not None and b.mean == pytest.approx(r_true, abs=4 * b.mean_error + 1e-3) for b in bins)
    fit = fit_resolution(np.array([b.e_mean for b in bins]) / 1e3, np.array([b.resolution for b in bins]),
                         np.array([b.resolution_error for b in bins]))
    assert fit.a == pytest.approx(a_true, abs=max(4 * fit.a_error, 0.004))
    assert fit.b == pytest.approx(b_true, abs=max(4 * fit.b_error, 0.003))
    assert fit.ndf == 6 and fit.chi2 < 25
    # the metric: 0 for the same showers; a 2 % response shift gives 0.02
    same = response_difference(ratio, e, ratio, e, edges, n_boot=3)
    assert same.response_diff == 0.0 and same.resolution_diff == 0.0
    shifted = response_difference(ratio, e, ratio * 1.02, e, edges, n_boot=3)
    assert shifted.response_diff == pytest.approx(0.02, rel=1e-9)
    assert shifted.resolution_diff == pytest.approx(0.0, abs=1e-12)  # sd / mean is scale-free
    wider = response_difference(ratio, e, r_true + (ratio - r_true) * 1.5, e, edges, n_boot=3)
    assert wider.resolution_diff == pytest.approx(0.5, rel=0.02)


def test_bins_auto_discrete_log_edges_and_errors():
    ds1 = 2.0 ** np.arange(8, 23)  # 256 MeV .. 4 TeV: 15 discrete energies
    edges = bin_edges(np.repeat(ds1, 3), parse_energy_bins("auto"))
    assert len(edges) == 16 and np.array_equal(bin_index(ds1, edges), np.arange(15))
    logb = bin_edges(np.array([1e3, 5e3, 1e5]), parse_energy_bins("4"))
    assert np.allclose(logb, [1e3, 10 ** 3.5, 1e4, 10 ** 4.5, 1e5])
    assert list(bin_index(np.array([1e3, 1e5, 2e5, 999.0]), logb)) == [0, 3, -1, -1]
    q = bin_edges(np.arange(1.0, 101.0), parse_jet_bins("pt:4"))
    assert np.allclose(q, [1, 25.75, 50.5, 75.25, 100])
    assert parse_jet_bins("mass:10,20,40").edges == (10.0, 20.0, 40.0)
    for bad in ("0", "5,3", "x", "-1,4"):
        with pytest.raises(UsageError, match="--energy-bins"):
            parse_energy_bins(bad)
    with pytest.raises(UsageError, match="--jet-bins"):
        parse_jet_bins("eta:4")


def test_null_pvalues_are_uniform_for_reference_vs_reference():
    """A W1 between two draws of one Gaussian, against a null of K = 49 such draws: over 300
    such tests, the p-values are uniform (KS test against U(0, 1))."""
    from pcbench.metrics.wasserstein import w1

    rng = np.random.default_rng(3)
    n, k = 200, 49
    pvals = []
    for _ in range(300):
        ref = rng.standard_normal(n)
        observed = w1(ref, rng.standard_normal(n))
        null = [w1(ref, rng.standard_normal(n)) for _ in range(k)]
        pvals.append(null_test(observed, np.array(null), "lower").p_value)
    assert stats.kstest(pvals, "uniform").pvalue > 0.01
    # a distorted sample is far out in the null: the smallest p-value K allows
    ref = rng.standard_normal(n)
    far = null_test(w1(ref, rng.standard_normal(n) + 1.0), np.array([w1(ref, rng.standard_normal(n)) for _ in range(k)]),
                    "lower")
    assert far.p_value == pytest.approx(1 / (k + 1)) and far.z > 5


def test_badness_directions_and_hand_pvalue():
    assert badness(0.7, "closer to 0.5") == pytest.approx(0.2) and badness(0.3, "higher") == -0.3
    t = null_test(0.6, np.array([0.52, 0.45, 0.61, 0.5]), "closer to 0.5")  # |.-0.5| = 0.02, 0.05, 0.11, 0
    assert t.p_value == pytest.approx(2 / 5)  # one null value (0.11) at least as bad as 0.1, plus one
    with pytest.raises(ValueError):
        badness(1.0, "sideways")


def test_equivalent_size_interpolates_in_log_log():
    sizes = np.array([100.0, 400.0, 1600.0, 6400.0])
    values = 1 / np.sqrt(sizes)  # a W1-like 1/sqrt(n) fall
    eq = equivalent_size(1 / np.sqrt(800.0), sizes, values, "lower")
    assert eq.bound == "=" and eq.n == pytest.approx(800.0, rel=1e-9)
    assert equivalent_size(1e-4, sizes, values, "lower").text() == ">= 6,400"
    assert equivalent_size(1.0, sizes, values, "lower").text() == "< 100"


def test_ks_tests_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(300), rng.standard_normal(400) + 0.3
    out = ks_tests({"x": a, "y": a}, {"x": b})
    r = stats.ks_2samp(a, b)
    assert out == {"x": (float(r.statistic), float(r.pvalue))}
