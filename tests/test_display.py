"""What a physicist reads: scales, value ± error, bounds for distances consistent with zero,
headers with the quantity, figures with off-scale points, md5 of the data alone, labels."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from factories import jetnet_arrays, write_h5
from pcbench.data.formats import data_md5
from pcbench.evaluate.display import column_scale, consistent_with_zero, counted, fmt_flops, fmt_number, fmt_value, header, scale_text
from pcbench.evaluate.plots import ratio_histogram
from pcbench.evaluate.result import EvaluationResult, MetricValue


@pytest.mark.parametrize("values, customary, expected", [
    ([0.00052, 0.0004], 1e3, 1e3),     # W1M: the papers' x10^3 prints 0.52
    ([7.42, 0.3], 1e3, 1.0),           # a KL of 7.4 at x10^3 would print 7420: back to x1
    ([3.2e-6, 1e-6], 1e3, 1e6),        # tiny: the power that brings 3.2e-6 into [1, 1000)
    ([1234.0], 1.0, 0.1),              # large: 123.4 at x10^-1
    ([0.0, None, float("nan")], 1e3, 1e3),
    ([0.0655, 0.0209, 0.0968, 0.641, 819_000.0], 1e3, 1e3),  # one untrained row does not set the scale
])
def test_column_scale_keeps_the_median_between_0_1_and_1000(values, customary, expected):
    scale = column_scale(values, customary)
    assert scale == pytest.approx(expected)
    vals = sorted(abs(v) for v in values if v is not None and np.isfinite(v) and v != 0)
    assert not vals or 0.1 <= vals[len(vals) // 2] * scale < 1000


def test_scale_text_and_header_name_the_quantity():
    assert scale_text(1e3) == "x10^3" and scale_text(1e-2) == "x10^-2" and scale_text(1.0) == ""
    assert header("w1m", 1e3) == "W1 of jet m/pT (x10^3)"
    assert header("mmd", 1.0) == "MMD (EMD to nearest, pT/pT_jet units)"
    assert "real JetNet30" in header("fpnd", 1.0)


@pytest.mark.parametrize("value, error, scale, better, text", [
    (0.000523, 0.0000412, 1e3, "lower", "0.523 ± 0.041"),   # error to 2 digits, value to its place
    (7.42, 0.29, 1.0, "lower", "7.42 ± 0.29"),
    (1234.5, 56.0, 1.0, "lower", "1234 ± 56"),             # no exponent, ever
    (9026.0, 5596.0, 1.0, "lower", "9000 ± 5600"),          # a large error: both to its 2nd digit
    (0.0032, 0.042, 1.0, "lower", "< 0.045"),               # the KPD truth row
    (-0.3155, 0.29, 1.0, "lower", "< 0.29"),                # a JSD estimate below zero
    (0.52, 0.04, 1.0, "closer to 0.5", "0.520 ± 0.040"),    # an AUC is not a distance
    (0.12, float("nan"), 1.0, "lower", "0.1200"),           # FPND: no error defined
    (None, None, 1.0, "lower", "-"),
    (0.99999999999999818, 1.8e-16, 1e3, "lower", "1000.0 ± 0"),  # a saturated S: the spread is float rounding
    (0.5, 0.0, 1.0, "lower", "0.5000 ± 0"),
])
def test_fmt_value(value, error, scale, better, text):
    assert fmt_value(value, error, scale, better) == text


def test_fixed_notation_never_prints_an_exponent():
    for x in (1.23e-7, 4.5e8, -2.2e-5, 0.0):
        assert "e" not in fmt_number(x).lower()
    assert consistent_with_zero(-1e-9, None, "lower") and not consistent_with_zero(0.3, 0.1, "lower")


@pytest.mark.parametrize("flops, text", [(350, "350 FLOP"), (30_652, "30.7 kFLOP"), (2.75e10, "27.5 GFLOP"),
                                         (1_000_000, "1.00 MFLOP")])
def test_flops_print_with_their_si_prefix(flops, text):
    assert fmt_flops(flops) == text


def test_huge_values_print_as_powers_of_ten_not_as_long_integers():
    assert fmt_value(4.426573181013137e20, 8.454596975615769e19) == "(4.43 ± 0.85) x 10^20"
    assert fmt_value(1.7e80, 1.4e80) == "(1.7 ± 1.4) x 10^80"
    assert fmt_number(3.2e12) == "3.20 x 10^12" and fmt_number(-5e9, 2) == "-5.0 x 10^9"
    assert fmt_number(4.5e8) == "450000000" and fmt_value(1377000, 11000) == "1377000 ± 11000"  # below 1e9: as before


@pytest.mark.parametrize("n, text", [(0, "0 threads"), (1, "1 thread"), (2, "2 threads")])
def test_counts_take_the_plural_unless_one(n, text):
    assert counted(n, "thread") == text


def test_ratio_panel_marks_points_beyond_its_range(tmp_path):
    """Generated density x3 in the upper tail: those ratio points lie above 1.5 and become arrows."""
    from pcbench import _plotting

    drawn = {}
    original = _plotting.ratio_points

    def spy(rax, x, ratio, err, color="C0"):
        drawn["arrows"] = original(rax, x, ratio, err, color)
        drawn["ratio"] = np.asarray(ratio)
        return drawn["arrows"]

    import pcbench.evaluate.plots as plots

    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, 20_000)
    gen = np.concatenate([rng.normal(0, 1, 20_000), rng.normal(2.0, 0.2, 4_000)])
    plots.ratio_points, saved = spy, plots.ratio_points
    try:
        path = ratio_histogram(real, gen, "x", tmp_path / "r.png")
    finally:
        plots.ratio_points = saved
    expected = int(np.sum((drawn["ratio"] > 1.5) | (drawn["ratio"] < 0.5)))
    assert expected > 0 and drawn["arrows"] == expected
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_single_valued_reference_is_stated_not_histogrammed(tmp_path):
    from PIL import Image

    real, gen = np.full(1000, 30.0), np.r_[np.full(990, 30.0), np.full(10, 29.0)]
    path = ratio_histogram(real, gen, "number of particles", tmp_path / "m.png")
    w, h = Image.open(path).size
    assert h < w / 2  # the one-panel text figure (5 x 2.2 in), not the 5 x 4.5 in histogram


def test_data_md5_ignores_attributes_and_sees_every_value(tmp_path):
    pf, jf = jetnet_arrays(20, 30, 0)
    a = write_h5(tmp_path / "a.h5", {"generation_time_per_object_s": 1.0}, particle_features=pf, jet_features=jf)
    b = write_h5(tmp_path / "b.h5", {"generation_time_per_object_s": 2.0}, particle_features=pf, jet_features=jf)
    assert a.read_bytes() != b.read_bytes() and data_md5(a) == data_md5(b)
    pf2 = pf.copy()
    pf2[19, 0, 0] += 1e-3
    c = write_h5(tmp_path / "c.h5", particle_features=pf2, jet_features=jf)
    assert data_md5(c) != data_md5(a)
    with h5py.File(a, "r") as f:  # rows read in chunks give the same digest as one pass
        assert f["particle_features"].shape == (20, 30, 4)
    # 3 rows of particle features per read, and one row (a budget below a row): the one-read digest
    assert data_md5(a, chunk_bytes=3 * 30 * 4 * 4) == data_md5(a) == data_md5(a, chunk_bytes=1)


def test_html_report_speaks_of_showers_and_parameterised_data(tmp_path):
    from pcbench.evaluate.plots import html_report

    m = MetricValue("w1_e_ratio", 0.0123, 0.002, "W1 of E_vis / E_inc", 1e3, 0.004, 0.001, "lower")
    res = EvaluationResult("point-showers", "cc2", {"w1_e_ratio": m},
                           {"reference": "ild-photons-param:test", "reference_split": "test", "n_showers": 600,
                            "geometry": "ild-ecal", "suite_version": "ild-1", "config": {"profile": "fast"},
                            "samples_parameterised": True, "reference_parameterised": True})
    page = html_report(res, [], tmp_path / "r.html").read_text()
    assert "600 showers per sample on ild-ecal" in page and "jets" not in page
    assert "PARAMETERISED showers" in page and "docs/metrics-showers.md" in page
    assert "12.3 ± 2.0" in page and "W1 of E_vis/E_inc (normalised)" in page


def test_parameterised_label_travels_from_data_through_training_and_sampling_to_the_record(tmp_path):
    """Before: a model trained only on parameterised showers got "samples_parameterised": false."""
    import json

    from click.testing import CliRunner

    from pcbench.cli import cli
    from pcbench.data import formats
    from pcbench.data.containers import ShowerPointSet
    from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk

    d = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 3, 60)
    data = formats.write(tmp_path / "train.h5", ShowerPointSet(d["points"], d["points"][..., 3] > 0,
                                                                 d["incident_energy"]), {"parameterised": True},
                         layout="ild")
    run = CliRunner().invoke
    assert run(cli, ["train", "shower-baseline", "--data-file", str(data), "--out", str(tmp_path / "m")]).exit_code == 0
    res = run(cli, ["sample", str(tmp_path / "m" / "last.pt"), "-o", str(tmp_path / "s.h5")])
    assert res.exit_code == 2 and "showers have no default count" in res.output
    res = run(cli, ["sample", str(tmp_path / "m" / "last.pt"), "-o", str(tmp_path / "s.h5"), "--energies-from", str(data)])
    assert res.exit_code == 0 and "PARAMETERISED" in res.output, res.output
    attrs = formats.read_attrs(tmp_path / "s.h5")
    assert attrs["parameterised"] is True or attrs["parameterised"] == 1
    assert len(formats.read(tmp_path / "s.h5")) == 60  # as many as --energies-from holds
    res = run(cli, ["evaluate", str(tmp_path / "s.h5"), "--reference", str(data), "--profile", "fast",
                    "--out", str(tmp_path / "o"), "--metrics", "w1_e_ratio"])
    assert res.exit_code == 0, res.output
    prov = json.loads((tmp_path / "o" / "shower-baseline.json").read_text())["provenance"]
    assert prov["samples_parameterised"] is True and prov["reference_parameterised"] is True
    assert prov["samples_data_md5"] == data_md5(tmp_path / "s.h5") != prov["samples_md5"]


def test_training_bar_names_the_part_what_follows_and_runs_on_the_budget():
    """Before: `ShowerFlow 14/3250 8:33:26` for a small config stopped after 3 minutes."""
    from pcbench._progress import TrainingProgress

    now = [0.0]
    bar = TrainingProgress("caloclouds2", [("ShowerFlow", 3250, "epochs"), ("point model", 3000, "steps")],
                           max_minutes=3.0, show=True)
    bar.clock = lambda: now[0]
    bar.started = bar.part_started = 0.0
    now[0] = 60.0
    bar.update(0, 14, "loss 1.2")
    task = bar.bar.tasks[0]
    status = task.fields["status"]
    bar.close()
    assert "ShowerFlow 14/3250 epochs" in status and "then point model (3000 steps)" in status
    assert "budget 1:00 of 3:00 (--max-minutes)" in status
    assert task.completed == pytest.approx(1 / 3)  # the bar runs on the budget, not on 14/3250 epochs
    assert "ShowerFlow ends in ~" in status  # this part's own estimate: (3250 - 14) x 60 s / 14


def test_a_cpu_budget_counts_this_process_cpu_time_not_the_wall_clock():
    """A leaderboard's shared budget must not shrink for the row that trains while the machine is
    loaded: sleeping (what a descheduled process does) spends the wall budget, not the CPU one."""
    import time

    from pcbench.models.trainer import Budget

    wall, cpu = Budget(0.1 / 60, clock="wall"), Budget(0.1 / 60, clock="cpu")
    time.sleep(0.15)
    assert wall.spent() and not cpu.spent()
    start = time.process_time()
    while time.process_time() - start < 0.15:
        pass
    assert cpu.spent()
    with pytest.raises(ValueError, match="clock: expected one of wall, cpu"):
        Budget(1.0, clock="gpu")


def test_datasets_listing_is_readable_at_80_columns_when_piped(tmp_path):
    """Before: cells cut to `zeno…`, `unk…`, `pcbe…`."""
    from click.testing import CliRunner

    from pcbench.cli import cli

    res = CliRunner().invoke(cli, ["datasets", "--cache-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "…" not in res.output and max(len(line) for line in lines) <= 80
    assert any(line.startswith("jetnet30  [jets]  files: g q t w z  size: 436.49 MB  cached: 0/5") for line in lines)
    assert "    source: zenodo 6975118   offline: pcbench simulate" in lines


def test_evaluate_shows_each_stage_and_keeps_a_log(tmp_path):
    """Before: a terminal-only spinner; the truth-vs-truth pass (as long as the model's) said nothing."""
    from click.testing import CliRunner

    from pcbench.cli import cli

    pf, jf = jetnet_arrays(300, 30, 0)
    ref = write_h5(tmp_path / "ref.h5", particle_features=pf, jet_features=jf)
    pf, jf = jetnet_arrays(100, 30, 1)
    gen = write_h5(tmp_path / "gen.h5", particle_features=pf, jet_features=jf)
    res = CliRunner().invoke(cli, ["evaluate", str(gen), "--reference", str(ref), "--profile", "fast",
                                   "--out", str(tmp_path / "o"), "--metrics", "w1m,kl_mass,auc_pl"])
    assert res.exit_code == 0, res.output
    log = (tmp_path / "o" / "gen.evaluate.log").read_text().splitlines()
    # the looping stage (Deep Sets, 3 folds in the fast profile) had a bar; the log keeps its length
    assert any(line.strip().startswith("model vs reference: Deep Sets, folds: 3 done in") for line in log)
    stages = [line.split("] ", 1)[1] for line in log if line.startswith("[")]
    assert stages[0] == "features" and stages[-1] == "done"
    assert "model vs reference: W1" in stages and "truth vs truth: W1" in stages
    assert stages.index("model vs reference: KL") < stages.index("truth vs truth: W1")
    assert all(s in res.output for s in stages[:-1])  # the terminal shows the same lines
    assert "W1 of jet m/pT [w1m]" in res.output and "x10^3" in res.output


def test_generation_time_names_the_machine_and_flags_a_loaded_one(tmp_path, monkeypatch):
    import os

    from click.testing import CliRunner

    from pcbench.cli import cli
    from pcbench.data import formats

    pf, jf = jetnet_arrays(200, 30, 0)
    data = write_h5(tmp_path / "g.h5", particle_features=pf, jet_features=jf)
    run = CliRunner().invoke
    assert run(cli, ["train", "independent", "--data-file", str(data), "--out", str(tmp_path / "m")]).exit_code == 0
    cores = os.cpu_count()
    monkeypatch.setattr(os, "getloadavg", lambda: (4.0 * cores, 1.0, 1.0))
    res = run(cli, ["sample", str(tmp_path / "m" / "last.pt"), "-n", "300", "-o", str(tmp_path / "s.h5"),
                    "--batch-size", "100"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "torch threads), batch 100, warm-up excluded" in text and "the machine was loaded" in text
    load = formats.read_attrs(tmp_path / "s.h5")["hardware"]["load"]
    assert load["loaded"] is True and load["load_1min"] == 4.0 * cores and load["cpu_count"] == cores
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    res = run(cli, ["sample", str(tmp_path / "m" / "last.pt"), "-n", "300", "-o", str(tmp_path / "s2.h5"),
                    "--batch-size", "100"])
    assert res.exit_code == 0 and "loaded" not in res.output
    # the same jets (same seed and batches): the data md5 agrees, the files (generation time, load) do not
    a, b = tmp_path / "s.h5", tmp_path / "s2.h5"
    assert data_md5(a) == data_md5(b) and a.read_bytes() != b.read_bytes()
