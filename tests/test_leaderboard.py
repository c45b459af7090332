"""Leaderboards: records, the comparability guard, deterministic tables, atomic writes, reproduction."""

from __future__ import annotations

import os
import shutil

import pytest
import yaml
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.evaluate import EvaluationResult, MetricValue
from pcbench.leaderboard import (ComparabilityError, build_tables, compare_csv, read_published, reproduce, to_csv,
                                 to_markdown, write_table)


def record(model: str, w1m: float, **prov_changes) -> EvaluationResult:
    prov = {"reference": "jetnet30-sim:g", "reference_split": "test", "reference_md5": "a" * 32,
            "suite_version": "jets-1", "config": {"profile": "fast"}, "n_jets": 1000, "seed": 42,
            "pcbench_version": "0.1.0", "samples_md5": "b" * 32, "jet_type": "g"}
    for k, v in prov_changes.items():
        if k == "profile":
            prov["config"] = {"profile": v}
        else:
            prov[k] = v
    metrics = {"w1m": MetricValue("w1m", w1m, 0.1e-3, "W1 of the relative jet mass", 1e3, 0.5e-3, 0.1e-3),
               "auc_hl": MetricValue("auc_hl", 0.5 + w1m, 0.01, "AUC", 1.0, 0.5, 0.01, "closer to 0.5")}
    return EvaluationResult("jets", model, metrics, prov)


def test_records_round_trip(tmp_path):
    r = record("epic-fm", 2e-3)
    assert EvaluationResult.read(r.write(tmp_path / "r.json")) == r


@pytest.mark.parametrize("field, value", [("reference", "jetnet30:g"), ("reference_split", "valid"),
                                          ("reference_md5", "c" * 32), ("suite_version", "jets-2"),
                                          ("profile", "full"), ("n_jets", 5000)])
def test_guard_refuses_each_mismatch(field, value):
    records = [record("a", 1e-3), record("b", 2e-3, **{field: value})]
    if field == "reference":  # another reference is another benchmark: two tables, no error
        assert len(build_tables(records)) == 2
        return
    with pytest.raises(ComparabilityError, match=rf"'b' has {field} = "):
        build_tables(records)


def test_guard_refuses_duplicate_models():
    with pytest.raises(ComparabilityError, match="more than one record for model"):
        build_tables([record("a", 1e-3), record("a", 2e-3)])


def test_table_content_and_byte_identical_rebuild(tmp_path):
    records = [record("mp-gan", 3e-3), record("epic-fm", 1e-3)]
    [table] = build_tables(records)
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[0] == "# jetnet30-sim:g"
    assert lines[2].startswith("| model | w1m x1e3 | auc_hl |")
    assert lines[4].startswith("| truth vs truth | 0.5 ± 0.1 | 0.5 ± 0.01 |")
    assert lines[5].startswith("| epic-fm | **1 ± 0.1** | **0.501 ± 0.01** |")  # best w1m and AUC closest to 0.5
    assert "Provenance: reference `jetnet30-sim:g` (test split" in md
    a = write_table(table, tmp_path / "one")
    b = write_table(build_tables(reversed(records))[0], tmp_path / "two")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert to_csv(table).splitlines()[2] == "epic-fm,computed,0.001,0.0001,0.501,0.01"


def test_interrupted_build_leaves_the_old_table(tmp_path, monkeypatch):
    [table] = build_tables([record("epic-fm", 1e-3)])
    md, csv_path = write_table(table, tmp_path)
    old = md.read_bytes(), csv_path.read_bytes()
    [newer] = build_tables([record("epic-fm", 9e-3)])
    real_replace = os.replace

    def crash_on_markdown(src, dst):
        if str(dst).endswith(".md"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_markdown)
    with pytest.raises(KeyboardInterrupt):
        write_table(newer, tmp_path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert md.read_bytes() == old[0]  # the Markdown table was not touched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([md.name, csv_path.name])  # no temporary files


def test_compare_csv_catches_a_hand_edited_number(tmp_path):
    [table] = build_tables([record("epic-fm", 1e-3), record("mp-gan", 3e-3)])
    _, committed = write_table(table, tmp_path / "committed")
    _, fresh = write_table(table, tmp_path / "fresh")
    assert compare_csv(committed, fresh, exact=True) == []
    committed.write_text(committed.read_text().replace("0.003,", "0.0031,"))
    diffs = compare_csv(committed, fresh, exact=True)
    assert diffs == ["mp-gan / w1m: committed 0.0031, reproduced 0.003 (tolerance: exact (same platform))"]
    assert compare_csv(committed, fresh, exact=False, n_sigma=2) == []  # 0.0001 apart, error 0.0001


def test_reproduce_end_to_end(tmp_path):
    cfg = {"name": "tiny", "data": {"simulate": "jetnet30", "jet_type": "g", "n": 240, "seed": 3},
           "threads": 2, "train": {"seed": 0}, "sample": {"n": 60, "batch_size": 64},
           "evaluate": {"profile": "fast", "metrics": ["w1m", "w1p", "fpd"]},
           "models": [{"name": "independent"},
                      {"name": "epic-fm", "epochs": 1, "set": {"hidden": 16, "layers": 1, "steps": 4}}]}
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(cli, ["leaderboard", "run", str(folder / "config.yaml"), "--work", str(tmp_path / "w")])
    assert res.exit_code == 0, res.output
    [csv_path] = folder.glob("*.csv")
    assert sorted(p.name for p in (folder / "records").glob("*.json")) == ["epic-fm.json", "independent.json"]
    assert reproduce(folder / "config.yaml", log=lambda _m: None) == []
    text = csv_path.read_text().splitlines()
    row = [i for i, line in enumerate(text) if line.startswith("independent,")][0]
    cells = text[row].split(",")
    cells[2] = repr(float(cells[2]) * 1.5)  # a committed number changed by hand
    text[row] = ",".join(cells)
    csv_path.write_text("\n".join(text) + "\n")
    res = CliRunner().invoke(cli, ["leaderboard", "reproduce", str(folder / "config.yaml")])
    assert res.exit_code == 1 and "independent / w1m: committed" in res.output
    shutil.rmtree(tmp_path / "w")


def test_published_rows_are_labelled_and_never_bold(tmp_path):
    rec = record("my-gan", 0.5e-3, reference="jetnet30", jet_type="q")
    [table] = build_tables([rec], read_published())
    md = to_markdown(table)
    assert "| MP gen + MP disc (MPGAN) (published: MP-GAN paper (arXiv:2106.11535)) | 0.6 ± 0.2 |" in md
    assert "| my-gan | **0.5 ± 0.1** |" in md  # the computed row is the best; published rows are never marked
    assert "MPGAN),published" not in to_csv(table) and "(published: MP-GAN paper" in to_csv(table)
