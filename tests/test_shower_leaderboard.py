"""Shower leaderboards: the typed config, a tiny shower config through run and reproduce, published
shower rows only on their real data set, and the static site's pages and links."""

from __future__ import annotations

import csv
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.errors import ConfigError
from pcbench.evaluate.result import EvaluationResult, MetricValue
from pcbench.leaderboard import build_tables, reproduce, to_markdown
from pcbench.leaderboard.config import load_config
from pcbench.leaderboard.published import published_rows

TINY = {"name": "tiny-showers", "description": "tiny PARAMETERISED ILD-like showers, for tests",
        "data": {"simulate": "ild-photons", "n": 160, "seed": 1, "workers": 1}, "threads": 1,
        "train": {"seed": 0}, "sample": {"energies_from": "reference", "seed": 0, "batch_size": 16},
        "evaluate": {"profile": "fast", "metrics": ["w1_n_hits", "w1_e_ratio", "w1_e_long", "w1_cog_y", "corr_mean"],
                     "plots": True},
        "cost": {"batches": [1, 8], "threads": [1], "repeats": 2, "pareto": "w1_e_ratio"},
        "models": [{"name": "shower-baseline"},
                   {"name": "caloclouds2", "label": "cc2", "set": {"flow_epochs": 2, "diffusion_steps": 4,
                                                                   "points_per_shower": 32}},
                   {"name": "caloclouds2-cm", "teacher": "cc2", "set": {"cm_steps": 2}}]}


@pytest.mark.parametrize("change, message", [
    ({"sample": {"energy_from": "reference"}}, "unknown key sample.energy_from; expected one of n, seed, batch_size, "
                                               "energies_from"),
    ({"models": [{"name": "shower-baseline", "sett": {}}]}, "unknown key models[0].sett"),
    ({"models": [{"name": "caloclouds2", "set": [1]}]}, "models[0].set: expected a mapping, got [1]"),
    ({"data": {"simulate": "ild-photons", "n": "many"}}, "data.n: expected an integer, got 'many'"),
    ({"models": [{"name": "epic-fm"}]}, "models[0].name: 'epic-fm' is not a shower generator"),
    ({"models": [{"name": "caloclouds2-cm", "teacher": "cc2"}]}, "models[0].teacher: 'cc2' is not the label of an "
                                                                 "earlier model"),
    ({"models": [{"name": "caloclouds2", "epochs": 3}]}, "models[0].epochs: shower models train for"),
    ({"data": {"simulate": "ild-photon", "n": 10}}, "data.simulate: 'ild-photon'; expected one of"),
    ({"evaluate": {"profile": "quick"}}, "evaluate.profile: 'quick'; expected fast or full"),
    ({"modles": []}, "unknown key modles"),
    ({"train": {"clock": "cpus"}}, "train.clock: 'cpus'; expected wall or cpu"),
])
def test_the_typed_config_names_the_file_and_the_key_path(tmp_path, change, message):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**TINY, **change}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)
    res = CliRunner().invoke(cli, ["leaderboard", "run", str(path)])
    assert res.exit_code == 2 and message in " ".join(res.output.split()) and "Traceback" not in res.output


def test_committed_configs_parse():
    root = Path(__file__).resolve().parents[1] / "leaderboard"
    kinds = {p.parent.name: load_config(p).kind for p in root.glob("*/config.yaml") if p.parent.name != "jetnet30-published"}
    assert kinds["smoke"] == "jets" and kinds["smoke-showers"] == "showers"
    assert {k for k, v in kinds.items() if v == "showers"} >= {"smoke-showers", "ild-param", "calochallenge-2-param",
                                                              "calochallenge-2-full", "calochallenge-3-full",
                                                              "ild-photons-full"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "config.yaml").write_text(yaml.safe_dump(TINY))
    res = CliRunner().invoke(cli, ["leaderboard", "run", str(folder / "config.yaml"), "--work", str(folder / "work")])
    assert res.exit_code == 0, res.output
    return folder


def test_a_shower_config_runs_and_reproduces_exactly(tiny_run):
    folder = tiny_run
    [md] = folder.glob("*.md")
    [table_csv] = folder.glob("*.csv")
    text = " ".join(md.read_text().split())
    assert md.name.startswith("ild-photons-param")
    for needle in ("truth vs truth", "shower-baseline", "cc2", "caloclouds2-cm", "PARAMETERISED showers",
                   "Protocol: the papers' (each model's 24 generated showers against the whole reference split, 24 "
                   "showers; the truth row: 24 showers of ild-photons-param (n=160, seed=1; PARAMETERISED) train split",
                   "per shower"):
        assert needle in text, needle
    assert "published" not in text  # parameterised data: no Geant4 rows
    rec = EvaluationResult.read(folder / "records" / "cc2.json")
    assert rec.provenance["protocol"]["mode"] == "split" and rec.provenance["reference_split"] == "test"
    assert rec.provenance["generation_time_per_object_s"] > 0 and (folder / "records" / "cc2.html").exists()
    # the cost step: pcbench time of every row, in the record, the table's footnote and the Pareto figure
    cost = rec.provenance["cost"]
    assert [(t["batch"], t["threads"]) for t in cost["timings"]] == [(1, 1), (8, 1)]
    assert all(t["ms_per_object"] > 0 for t in cost["timings"]) and cost["parameters"] > 0
    assert (folder / "pareto_w1_e_ratio.png").stat().st_size > 5000
    assert "pcbench time on cpu: batch 1, 1 thread:" in text and "parameters used in sampling" in text
    assert "corr_mean" in rec.metrics and rec.metrics["corr_mean"].truth is not None
    assert reproduce(folder / "config.yaml", log=lambda m: None) == []
    # a hand-edited cell is found, with the row, the column and both values
    rows = list(csv.DictReader(table_csv.open()))
    edited = rows[1]["w1_e_ratio"]
    rows[1]["w1_e_ratio"] = repr(float(edited) * 1.5)
    with table_csv.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    diffs = reproduce(folder / "config.yaml", log=lambda m: None)
    assert len(diffs) == 1 and f"{rows[1]['model']} / w1_e_ratio: committed" in diffs[0] and edited in diffs[0]


def test_a_pareto_metric_the_config_does_not_compute_is_refused_before_training(tmp_path):
    from pcbench.leaderboard.pipeline import run_pipeline

    cfg = {**TINY, "cost": {"batches": [1], "pareto": "w1_e_rati"}}
    with pytest.raises(ConfigError, match="cost.pareto 'w1_e_rati' is not a metric this config computes"):
        run_pipeline(cfg, tmp_path, log=lambda m: None)
    assert not (tmp_path / "models").exists()  # nothing trained


class _Checker(HTMLParser):
    """Well-formedness (every non-void tag closed in order) and the links of a page."""

    VOID = {"meta", "br", "img", "link", "hr", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.links: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        for key in ("href", "src"):
            if d.get(key):
                self.links.append(d[key])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def test_the_site_is_well_formed_and_every_link_resolves(tiny_run, tmp_path):
    root = tmp_path / "boards"
    shutil.copytree(tiny_run, root / "showers", ignore=shutil.ignore_patterns("work"))
    res = CliRunner().invoke(cli, ["leaderboard", "site", str(root), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    pages = sorted((tmp_path / "site").rglob("*.html"))
    assert tmp_path / "site" / "index.html" in pages and len(pages) >= 2 + 3  # index, table, three reports
    for page in pages:
        checker = _Checker()
        checker.feed(page.read_text(encoding="utf-8"))
        assert not checker.errors and not checker.stack, (page, checker.errors, checker.stack)
        for link in checker.links:
            assert not link.startswith(("http:", "https:", "//")), (page, link)  # offline: nothing fetched
            assert (page.parent / link.split("#")[0]).resolve().is_file(), (page, link)
    table_page = next(p for p in pages if p.parent.name == "showers")
    text = table_page.read_text()
    assert "sortBy(this)" in text and 'href="ild-photons-param' in text and "PARAMETERISED" in text
    index = (tmp_path / "site" / "index.html").read_text()
    assert "showers" in index and table_page.name in index


def _shower_record(model: str, value: float, parameterised: bool) -> EvaluationResult:
    prov = {"reference": "ild-photons", "reference_split": "test", "reference_md5": {"test": "a" * 32},
            "suite_version": "ild-1", "config": {"profile": "full"}, "n_showers": 40000, "seed": 42,
            "geometry": "ild-ecal", "pcbench_version": "0.1.0", "samples_md5": "b" * 32,
            "protocol": {"mode": "split", "generated_rows": 40000, "reference_rows": 40000, "truth_rows": 40000,
                         "truth_sample": "ild-photons train split"},
            "samples_parameterised": parameterised, "reference_parameterised": parameterised}
    metrics = {"w1_n_hits": MetricValue("w1_n_hits", value, 0.2e-3, "W1 of N_hits", 1e3, 0.7e-3, 0.2e-3, "lower"),
               "auc_high": MetricValue("auc_high", 0.9, 0.001, "AUC", 1.0, 0.5, 0.01, "closer to 0.5")}
    return EvaluationResult("point-showers", model, metrics, prov)


def test_published_shower_rows_only_on_their_real_data_set_and_never_bold():
    rows = published_rows()
    real = [_shower_record("a", 1.0e-3, False), _shower_record("b", 9.0e-3, False)]
    [table] = build_tables(real, rows)
    assert [p.model for p in table.published] == ["Geant4 (vs Geant4)", "CaloClouds", "CaloClouds II",
                                                  "CaloClouds II (CM)"]
    md = to_markdown(table)
    line = next(ln for ln in md.splitlines() if ln.startswith("| CaloClouds II (published"))
    # printed 3.6 ± 0.5 (x10^-3) and 0.928 ± 0.001 (two digits of error here): aligned with pcbench's columns of the same metrics and scales
    assert line == "| CaloClouds II (published: CaloClouds II paper, arXiv:2309.05704 (W1 as printed there, 40,000 " \
                   "showers)) | 3.60 ± 0.50 | 0.9280 ± 0.0010 |"
    assert "**" not in line and "| **1.00 ± 0.20** |" in md  # the computed best is bold, published rows never
    assert "40,000 showers per sample; W1 on 5 consecutive batches of 10,000" in md
    [param] = build_tables([_shower_record("a", 1.0e-3, True), _shower_record("b", 9.0e-3, True)], rows)
    assert not param.published and "published" not in to_markdown(param)
    calo = rows["calochallenge-2"][0]
    assert calo.model == "GEANT4" and calo.values["fpd"] == (10.776, 0.7901)
    assert calo.values["sep_e_ratio"][0] == pytest.approx(0.4416, rel=1e-3)  # 'sep E total' 4.416e-4, x10^3
    assert json.dumps(calo.values)  # plain numbers
