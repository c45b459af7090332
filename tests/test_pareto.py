"""Pareto fronts of a metric against time per object: hand-made points whose front is known, for
each direction of "better"; the figure from records (and from cost records); the command line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli_checks import assert_one_line_error
from pcbench.cli import cli
from pcbench.errors import UsageError
from pcbench.evaluate.result import EvaluationResult, MetricValue
from pcbench.leaderboard.pareto import ParetoPoint, better_key, pareto_figure, pareto_front
from pcbench.models.cost import CostRecord, Timing

PNG = b"\x89PNG\r\n\x1a\n"


# ---- the front ------------------------------------------------------------------------------

def test_front_for_lower_is_better():
    #        A fast, bad    B          C (B is faster and better)  D slow, best  E fastest  F (as good as D, slower)
    pts = [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0), (0.5, 10.0), (5.0, 1.0)]
    assert pareto_front(pts, "lower") == [0, 1, 3, 4]


def test_front_for_higher_is_better():
    pts = [(1.0, 0.2), (2.0, 0.5), (3.0, 0.4), (4.0, 0.9), (5.0, 0.9), (0.5, 0.1)]
    assert pareto_front(pts, "higher") == [0, 1, 3, 5]
    assert pareto_front(pts, "lower") == [5]  # the other direction: the fastest is also the lowest


def test_front_for_closer_to_a_target():
    aucs = [(1.0, 0.99), (2.0, 0.6), (3.0, 0.45), (4.0, 0.55), (0.5, 0.01)]  # |AUC - 0.5|: .49 .1 .05 .05 .49
    assert pareto_front(aucs, "closer to 0.5") == [1, 2, 4]
    density = [ParetoPoint("a", 1.0, 1.3), ParetoPoint("b", 2.0, 0.95), ParetoPoint("c", 3.0, 1.02)]
    assert pareto_front(density, "closer to 1") == [0, 1, 2]
    assert pareto_front(density[:2] + [ParetoPoint("d", 3.0, 0.9)], "closer to 1") == [0, 1]


def test_front_ignores_nan_and_keeps_identical_points():
    pts = [(1.0, 2.0), (1.0, 2.0), (0.1, math.nan), (math.inf, 0.0), (3.0, 3.0)]
    assert pareto_front(pts, "lower") == [0, 1]
    assert pareto_front([], "lower") == []
    assert better_key("closer to 0.5")(0.7) == pytest.approx(0.2)
    with pytest.raises(UsageError, match="better 'smaller'"):
        better_key("smaller")


# ---- the figure -----------------------------------------------------------------------------

def record(model: str, w1m: float, cov: float, t: float | None, parameterised: bool = False) -> EvaluationResult:
    prov = {"reference": "jetnet30-sim:g", "reference_split": "test", "reference_md5": "0" * 32, "suite_version": 1,
            "config": {"profile": "fast"}, "protocol": None, "generation_time_per_object_s": t,
            "samples_parameterised": parameterised}
    metrics = {"w1m": MetricValue("w1m", w1m, w1m / 20, "W1 of jet mass", 1e3, 0.0005, 0.0001, "lower"),
               "cov": MetricValue("cov", cov, 0.01, "coverage", 1.0, 0.55, 0.01, "higher")}
    return EvaluationResult("jets", model, metrics, prov)


def cost(model: str, ms: float) -> CostRecord:
    cell = Timing(batch=100, threads=1, ms_per_object=ms, ms_per_object_std=ms / 10, repeats_ms_per_object=[ms] * 3,
                  samples_md5="0" * 32, repeatable=True, mean_constituents=20.0, peak_memory_mb=400.0,
                  peak_memory_increase_mb=1.0, load_before=0.1, load_after=0.1, loaded=False)
    return CostRecord(model, "jets", f"{model}.pt", "0" * 32, "cpu", 0, 3, 1, [cell], {"total": 10}, {"per_object": 1.0},
                      "test")


@pytest.fixture
def records() -> list[EvaluationResult]:
    return [record("fast-bad", 0.010, 0.30, 1e-5), record("mid", 0.004, 0.45, 2e-4),
            record("slow-good", 0.001, 0.50, 3e-3), record("dominated", 0.006, 0.40, 5e-3),
            record("untimed", 0.002, 0.5, None)]


def test_figure_is_written_with_the_front_of_the_records(records, tmp_path):
    fig = pareto_figure(records, "w1m", tmp_path / "f.png")
    assert fig.path.read_bytes()[:8] == PNG and fig.path.stat().st_size > 10_000
    assert fig.front_models == ["fast-bad", "mid", "slow-good"] and fig.better == "lower"
    assert fig.skipped == {"untimed": "no time per object (give its cost record)"}
    assert {p.model: p.time_s for p in fig.points}["mid"] == 2e-4
    hi = pareto_figure(records, "cov", tmp_path / "c.png")  # higher is better: "dominated" still is
    assert set(hi.front_models) == {"fast-bad", "mid", "slow-good"}


def test_a_cost_record_supplies_and_replaces_times(records, tmp_path):
    fig = pareto_figure(records, "w1m", tmp_path / "f.png", costs=[cost("untimed", 1e-3), cost("dominated", 1e-3),
                                                                    cost("not-a-row", 1.0)])
    times = {p.model: p.time_s for p in fig.points}
    assert times["untimed"] == 1e-6 and times["dominated"] == 1e-6  # 1e-3 ms
    assert fig.front_models == ["slow-good", "untimed"]  # untimed, now the fastest, dominates the other three
    assert fig.unmatched_costs == ["not-a-row"] and not fig.skipped
    assert "cost record (batch 100, 1 thread, cpu)" in {p.time_source for p in fig.points}


def test_parameterised_data_are_named_in_the_title(tmp_path):
    rs = [record("a", 0.01, 0.3, 1e-4, parameterised=True), record("b", 0.02, 0.3, 1e-3, parameterised=True)]
    fig = pareto_figure(rs, "w1m", tmp_path / "p.png")
    assert "PARAMETERISED" in fig.title and fig.front_models == ["a"]
    assert "PARAMETERISED" not in pareto_figure([record("a", 0.01, 0.3, 1e-4)], "w1m", tmp_path / "q.png").title


# ---- the command line ---------------------------------------------------------------------

@pytest.fixture
def records_dir(records, tmp_path) -> Path:
    d = tmp_path / "records"
    d.mkdir()
    for r in records:
        r.write(d / f"{r.model}.json")
    return d


def test_cli_pareto_writes_the_figure(records_dir, tmp_path):
    c = cost("untimed", 0.5).write(tmp_path / "untimed.cost.json")
    res = CliRunner().invoke(cli, ["leaderboard", "pareto", str(records_dir), "--metric", "w1m", "--out",
                                   str(tmp_path / "fig.png"), "--cost", str(c)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "fig.png").read_bytes()[:8] == PNG
    text = " ".join(res.output.split())
    assert "front: fast-bad, mid, slow-good" in text and "untimed: 0.500 ms per object" in text


@pytest.mark.parametrize("extra, code, needles", [
    (["--metric", "nope"], 2, ["--metric nope: no record has it", "cov, w1m"]),
    (["--metric", "w1m", "--benchmark", "other"], 2, ["--benchmark other: no records of that benchmark"]),
    (["--metric", "w1m", "--cost", "BAD"], 1, ["not a pcbench cost record"]),
])
def test_cli_pareto_errors_are_one_line(records_dir, tmp_path, extra, code, needles):
    bad = tmp_path / "bad.json"
    bad.write_text('{"metrics": {}}')
    args = [str(bad) if a == "BAD" else a for a in extra]
    res = CliRunner().invoke(cli, ["leaderboard", "pareto", str(records_dir), "--out", str(tmp_path / "f.png"), *args])
    assert_one_line_error(res, code, *needles)
    assert not (tmp_path / "f.png").exists()
