"""The newer evaluation practice through ``evaluate`` and the CLI (issue 22): per-bin runs,
null-distribution p-values, equivalent reference statistics, KS tests, response and
correlation metrics, their report and figures."""

from __future__ import annotations

import math

import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.data.simulate.showers import simulate_showers
from pcbench.evaluate import evaluate
from tests.cli_checks import assert_one_line_error

METRICS = ("sep_e_ratio", "response_diff", "resolution_diff", "corr_max", "corr_mean")


@pytest.fixture(scope="module")
def showers(tmp_path_factory):
    d = tmp_path_factory.mktemp("practice")
    ref = simulate_showers("calochallenge-2", 600, d / "ref.h5", seed=1, chunk_size=200, progress=False)
    gen = simulate_showers("calochallenge-2", 250, d / "gen.h5", seed=2, chunk_size=250, progress=False)
    hot = d / "hot.h5"  # the same showers with 8 % more energy: a wrong response
    shutil.copy(gen, hot)
    with h5py.File(hot, "r+") as f:
        f["showers"][...] = f["showers"][...] * 1.08
    return d, ref, gen, hot


def _within(v: dict, k: float = 4.0) -> bool:
    err = np.hypot(v["error"], v["truth_error"])
    return abs(v["value"] - v["truth"]) <= k * err + 1e-12


def test_per_bin_null_and_equivalent_stats_on_a_truth_like_sample(showers):
    d, ref, gen, _ = showers
    r = evaluate(gen, str(ref), profile="fast", metrics=METRICS, per_bin=True, energy_bins="3", null=4,
                 equivalent_stats=True, out_dir=d / "out", plots=True)
    pb = r.per_bin
    assert pb["variable"] == "incident_energy" and len(pb["edges"]) == 4 and len(pb["bins"]) == 3
    assert sum(b["n_gen"] for b in pb["bins"]) + pb["outside"]["gen"] == 250
    for b in pb["bins"]:  # a sample of the reference's distribution: truth-like in every bin
        assert set(b["metrics"]) == set(METRICS)
        for name in ("sep_e_ratio", "response_diff", "corr_mean"):
            assert _within(b["metrics"][name]), (b["low"], name, b["metrics"][name])
    for m in r.metrics.values():
        assert m.p_value is not None and 1 / 5 <= m.p_value <= 1.0  # K = 4: p on the grid k / 5
        assert m.equivalent_size is not None
    sig = r.provenance["significance"]
    assert sig["null_draws"] == 4 and len(sig["metrics"]["sep_e_ratio"]["null"]["values"]) == 4
    assert sig["metrics"]["sep_e_ratio"]["equivalent"]["sizes"] == [16, 31, 62, 125, 250]
    ks = r.provenance["details"]["ks"]
    assert "E_ratio" in ks and all(0 <= s <= 1 and 0 <= p <= 1 for s, p in ks.values())
    fits = r.provenance["details"]["response"]
    assert fits["reference_fit"]["a"] > 0 and len(fits["model"]) == 3  # --energy-bins 3: the response bins too
    # the record keeps it all; the report shows the per-bin table and the figures
    rec = json.loads((d / "out" / "gen.json").read_text())
    assert rec["per_bin"]["bins"][0]["metrics"]["sep_e_ratio"]["value"] == pb["bins"][0]["metrics"]["sep_e_ratio"]["value"]
    page = (d / "out" / "gen.html").read_text()
    assert "Per bin: incident energy [MeV], 3 log-spaced bins" in page and "equiv. ref. size" in page
    assert "Kolmogorov-Smirnov" in page and "resolution fit, reference" in page
    for fig in ("correlation_difference", "response_resolution", "per_bin_sep_e_ratio", "null_response_diff"):
        assert (d / "out" / "gen_plots" / f"{fig}.png").stat().st_size > 5_000


def test_a_wrong_response_is_far_out_in_the_null_and_in_every_bin(showers):
    d, ref, _, hot = showers
    r = evaluate(hot, str(ref), profile="fast", metrics=("response_diff",), per_bin=True, energy_bins="2", null=4,
                 energy_check=False)
    m = r.metrics["response_diff"]
    assert m.value == pytest.approx(0.08, abs=0.02)  # the 8 % shift, measured (plus the samples' own difference)
    assert m.p_value == pytest.approx(1 / 5) and m.z > 5
    for b in r.per_bin["bins"]:
        v = b["metrics"]["response_diff"]
        assert v["value"] > v["truth"] + 5 * np.hypot(v["error"], v["truth_error"])


def test_the_same_inputs_give_the_same_significance_bit_for_bit(showers):
    d, ref, gen, _ = showers
    a = evaluate(gen, str(ref), profile="fast", metrics=("corr_mean",), null=3)
    b = evaluate(gen, str(ref), profile="fast", metrics=("corr_mean",), null=3)
    assert a.metrics == b.metrics
    assert a.provenance["significance"] == b.provenance["significance"]


def test_cli_prints_the_per_bin_table_and_rejects_bad_bins(showers, tmp_path):
    d, ref, gen, _ = showers
    res = CliRunner().invoke(cli, ["evaluate", str(gen), "--reference", str(ref), "--profile", "fast", "--metrics",
                                   "response_diff,corr_max", "--per-bin", "--energy-bins", "2", "--out",
                                   str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "per bin of incident energy [MeV], 2 log-spaced bins" in res.output
    assert "resolution fit, model: sigma/E = a/sqrt(E[GeV])" in res.output
    assert "Kolmogorov-Smirnov" in res.output
    bad = CliRunner().invoke(cli, ["evaluate", str(gen), "--reference", str(ref), "--energy-bins", "5,3",
                                   "--out", str(tmp_path)])
    assert_one_line_error(bad, 2, "--energy-bins '5,3'", "strictly increasing")
    bad = CliRunner().invoke(cli, ["evaluate", str(gen), "--reference", str(ref), "--null", "-2",
                                   "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--null" in bad.output and "Traceback" not in bad.output


def test_auc_cnn_runs_in_the_calochallenge_suite_and_says_when_it_is_unsettled(showers):
    d, ref, gen, _ = showers
    r = evaluate(gen, str(ref), profile="fast", metrics=("auc_cnn",))
    m = r.metrics["auc_cnn"]
    cnn = r.provenance["details"]["classifier_cnn"]
    assert cnn["n_per_class"] == 250 and cnn["steps_per_epoch"] == 3  # 2 x 250 x 0.6 training rows / batch 100
    assert cnn["settled"] is False  # 3 steps x 10 epochs: below the 150 the BatchNorm statistics need
    # so the value is not reported (a table prints "-" and says why); the run's number is kept, labelled
    assert math.isnan(m.value) and math.isnan(m.truth) and math.isnan(r.metrics["jsd_cnn"].value)
    assert 0.0 <= cnn["unsettled_auc"] <= 1.0 and cnn["not_reported"].startswith("30 optimiser steps (< 150)")
    assert m.better == "closer to 0.5"
