"""Leaderboards: records, the comparability guard, deterministic tables, atomic writes, reproduction."""

from __future__ import annotations

import dataclasses

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

from pcbench._io import atomic_path
from pcbench.cli import cli
from pcbench.cli import leaderboard as cli_leaderboard
from pcbench.evaluate import EvaluationResult, MetricValue
from pcbench.leaderboard import (ComparabilityError, build_tables, compare_csv, read_published, to_csv,
                                 to_markdown, write_table)
from pcbench._platform import _cpuinfo, fingerprint_differences, platform_fingerprint
from pcbench.leaderboard import pipeline
from pcbench.leaderboard.store import pair_problem

ROOT = Path(__file__).resolve().parents[1]


def _strict(text: str):
    """json.loads that rejects NaN / Infinity (what a strict parser does)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _one_line_error(res, *needles: str) -> str:
    """The CLI failed with exit 1 and one line of error naming ``needles``, without a traceback."""
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


SPLIT = {"mode": "split", "generated_rows": 1000, "reference_rows": 1500, "truth_rows": 1000,
         "truth_sample": "jetnet30-sim:g, train split"}
HALVES = {"mode": "halves", "generated_rows": 1000, "reference_rows": 1000, "truth_rows": 1000,
          "truth_sample": "half B of the reference file"}


def record(model: str, w1m: float, **prov_changes) -> EvaluationResult:
    prov = {"reference": "jetnet30-sim:g", "reference_split": "test", "reference_md5": "a" * 32,
            "suite_version": "jets-1", "config": {"profile": "fast"}, "n_jets": 1000, "seed": 42,
            "pcbench_version": "0.1.0", "samples_md5": "b" * 32, "jet_type": "g", "protocol": SPLIT}
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
                                          ("profile", "full"), ("protocol", HALVES),
                                          ("protocol", {**SPLIT, "generated_rows": 5000})])
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
    assert lines[2].startswith("| model | W1 of jet m/pT (x10^3) | AUC, boosted trees on jet observables |")
    assert lines[4].startswith("| truth vs truth | 0.50 ± 0.10 | 0.500 ± 0.010 |")
    # w1m: 1.00 vs 3.00 (errors 0.10): best beyond the errors, bold; AUC 0.501 vs 0.503 (± 0.010): not bold
    assert lines[5].startswith("| epic-fm | **1.00 ± 0.10** | 0.501 ± 0.010 |")
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


def _set_cell(csv_path, model: str, column: int, change) -> None:
    text = csv_path.read_text().splitlines()
    row = [i for i, line in enumerate(text) if line.startswith(f"{model},")][0]
    cells = text[row].split(",")
    cells[column] = repr(change(float(cells[column])))
    text[row] = ",".join(cells)
    csv_path.write_text("\n".join(text) + "\n")


def test_reproduce_exact_on_the_same_fingerprint_within_errors_elsewhere(tmp_path, monkeypatch):
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
    for f in (folder / "records").glob("*.json"):
        _strict(f.read_text())  # what `leaderboard run` writes is strict JSON
    made_on = EvaluationResult.read(folder / "records" / "epic-fm.json").provenance["platform"]
    with threadpool_limits(limits=2):  # as the run: the config's threads, whatever this process's pools are
        here = platform_fingerprint()
    assert made_on == here and made_on["torch_threads"] == 2
    assert all(lib["num_threads"] == 2 for lib in made_on["blas"])  # the config's threads bound every pool
    committed = csv_path.read_text()
    # a float difference of the size another CPU makes (1e-9 relative; e.g. AVX-512 vs AVX2 kernels)
    _set_cell(csv_path, "epic-fm", 2, lambda v: v * (1 + 1e-9))
    res = CliRunner().invoke(cli, ["leaderboard", "reproduce", str(folder / "config.yaml")])
    assert res.exit_code == 1 and "not reproduced: 1 difference(s)" in res.output, res.output
    assert "compared on the same platform (exact)" in res.output
    assert "epic-fm / w1m: committed" in res.output and "(tolerance: exact (same platform))" in res.output
    # the same on a machine whose CPU has other vector units: within errors, while a real change is still caught
    _set_cell(csv_path, "independent", 2, lambda v: v * 1.5)
    elsewhere = {**made_on, "cpu_flags": sorted(set(made_on["cpu_flags"]) ^ {"avx512f"})}
    monkeypatch.setattr(pipeline, "platform_fingerprint", lambda: elsewhere)
    res = CliRunner().invoke(cli, ["leaderboard", "reproduce", str(folder / "config.yaml")])
    assert res.exit_code == 1 and "not reproduced: 1 difference(s)" in res.output, res.output
    assert "compared on another platform (within 2.0 errors; differs in cpu_flags)" in res.output
    assert "independent / w1m: committed" in res.output and "(tolerance: 2.0 x error" in res.output
    csv_path.write_text(committed)
    # a real other platform: torch, OpenBLAS, MKL, oneDNN and numpy held to AVX2 kernels (on an AVX-512 CPU
    # another fingerprint and other float rounding; on an AVX2 CPU the same one, so exact)
    from numpy.core._multiarray_umath import __cpu_features__ as feats
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell",
           "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
           "NPY_DISABLE_CPU_FEATURES": " ".join(k for k, on in feats.items() if on and k.startswith("AVX512"))}
    proc = subprocess.run([sys.executable, "-m", "pcbench", "leaderboard", "reproduce", str(folder / "config.yaml")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "reproduced" in proc.stdout, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    import torch
    if torch.backends.cpu.get_cpu_capability() != "AVX2":
        assert "compared on another platform (within 2.0 errors; differs in " in proc.stdout
        assert "torch_cpu_capability" in proc.stdout
    shutil.rmtree(tmp_path / "w")


def test_platform_fingerprint_holds_what_changes_floats(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"
                    "flags\t\t: fpu sse2 sse4_1 sse4_2 avx avx2 fma f16c bmi2 avx512f avx512vl sha_ni\n\n"
                    "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n")
    assert _cpuinfo(info) == ("AMD EPYC 7763 64-Core Processor",
                              ["avx", "avx2", "avx512f", "avx512vl", "f16c", "fma", "sse4_1", "sse4_2"])
    fp = platform_fingerprint()
    assert {"machine", "cpu_model", "cpu_flags", "python", "numpy", "numpy_simd", "blas", "torch",
            "torch_cpu_capability", "torch_mkl", "torch_threads"} <= set(fp)
    import torch
    from threadpoolctl import threadpool_info
    assert fp["torch_threads"] == torch.get_num_threads()
    assert {(lib["internal_api"], lib["version"]) for lib in threadpool_info()} <= \
        {(lib["internal_api"], lib["version"]) for lib in fp["blas"]}
    assert json.loads(json.dumps(fp)) == fp and platform_fingerprint() == fp  # serialisable and stable
    for key in fp:
        assert fingerprint_differences(fp, {**fp, key: "other"}) == [key]
    assert fingerprint_differences(fp, None) == ["fingerprint missing"]


def test_published_rows_are_labelled_and_never_bold(tmp_path):
    rec = record("my-gan", 0.5e-3, reference="jetnet30", jet_type="q")
    [table] = build_tables([rec], read_published())
    md = to_markdown(table)
    assert "| MP gen + MP disc (MPGAN) (published: MP-GAN paper (arXiv:2106.11535)) | 0.60 ± 0.20 |" in md
    assert "| my-gan | 0.50 ± 0.10 |" in md  # one computed row: nothing to be best against
    assert not any("**" in line for line in md.splitlines() if "(published:" in line)  # published rows never bold
    assert "Published rows are quoted from their source" in md
    assert "MPGAN),published" not in to_csv(table) and "(published: MP-GAN paper" in to_csv(table)


def test_a_reason_every_row_shares_is_said_once_in_the_footer():
    why = {"classifier_cnn": {"not_reported": "40 optimiser steps"}}
    same = [record(m, 1e-3, details=why, truth_details=why) for m in ("a-gan", "b-gan")]
    md = to_markdown(build_tables(same)[0])
    assert md.count("CNN classifier not reported") == 1
    assert "CNN classifier not reported for any row or its truth row (40 optimiser steps)." in md
    other = {"classifier_cnn": {"not_reported": "no GPU"}}
    mixed = [same[0], record("b-gan", 1e-3, details=other, truth_details=why)]
    md = to_markdown(build_tables(mixed)[0])  # different reasons: each row says its own
    assert "for any row" not in md and md.count("CNN classifier not reported (no GPU)") == 1
    assert md.count("CNN classifier not reported (40 optimiser steps)") == 3


# --- strict JSON, bad records, half-written pairs, killed writes, the demo's folder --------------------------------
def test_records_are_strict_json_with_null_for_non_finite(tmp_path):
    r = record("epic-fm", 2e-3)
    r.metrics["fpnd"] = MetricValue("fpnd", 12.5, math.nan, "FPND", 1.0, math.inf, None)
    r.provenance["spread"] = [1.0, -math.inf]
    text = r.write(tmp_path / "r.json").read_text()
    data = _strict(text)  # a strict parser reads it
    assert data["metrics"]["fpnd"]["error"] is None and data["metrics"]["fpnd"]["truth"] is None
    assert data["provenance"]["spread"] == [1.0, None] and "NaN" not in text and "Infinity" not in text
    back = EvaluationResult.read(tmp_path / "r.json")
    assert back.metrics["fpnd"].value == 12.5 and math.isnan(back.metrics["fpnd"].error)  # null error: NaN in memory
    assert back.metrics["w1m"] == r.metrics["w1m"]
    assert list(back.metrics) == ["w1m", "auc_hl", "fpnd"]  # the suite's order (a table's columns), not sorted
    # a record written before, with bare NaN, is still read
    (tmp_path / "old.json").write_text(text.replace('"error": null', '"error": NaN'))
    assert math.isnan(EvaluationResult.read(tmp_path / "old.json").metrics["fpnd"].error)


def test_committed_records_are_strict_json():
    files = sorted(ROOT.glob("leaderboard/*/records/*.json"))
    assert len(files) >= 8
    for f in files:
        _strict(f.read_text())


def _built_pair(tmp_path, *records):
    rec_dir = tmp_path / "records"
    rec_dir.mkdir(parents=True, exist_ok=True)
    for r in records:
        r.write(rec_dir / f"{r.model}.json")
    return rec_dir


def test_build_refuses_bad_records_with_one_line(tmp_path):
    good = record("epic-fm", 1e-3).write(tmp_path / "good.json")
    full = good.read_text()
    cases = {  # file content -> what the one line must say
        "cut.json": (full[: len(full) // 2], "cut off"),
        "empty.json": ("", "cut off"),
        "garbage.json": ("this is not json\n", "not a complete JSON result record"),
        "list.json": ("[1, 2]\n", "not a pcbench result record"),
        "nometrics_field.json": (json.dumps({"kind": "jets", "model": "x"}), "not a pcbench result record"),
        "badmetric.json": (full.replace('"definition"', '"definitionx"'), "not a pcbench result record"),
    }
    out = tmp_path / "tables"
    for name, (content, needle) in cases.items():
        (tmp_path / name).write_text(content)
        res = CliRunner().invoke(cli, ["leaderboard", "build", str(good), str(tmp_path / name), "--out", str(out)])
        _one_line_error(res, name, needle)
    # records without any metric (what a --metrics typo once wrote): refused, naming every such file
    empty = [EvaluationResult("jets", m, {}, record(m, 1e-3).provenance) for m in ("a", "b")]
    paths = [e.write(tmp_path / f"{e.model}-empty.json") for e in empty]
    res = CliRunner().invoke(cli, ["leaderboard", "build", str(good), *map(str, paths), "--out", str(out)])
    _one_line_error(res, "without any metric", str(paths[0]), str(paths[1]))
    (tmp_path / "nothing").mkdir()
    res = CliRunner().invoke(cli, ["leaderboard", "build", str(tmp_path / "nothing"), "--out", str(out)])
    _one_line_error(res, "nothing", "no result records")
    assert not out.exists()  # nothing written by a refused build


_KILL_AT_SECOND_RENAME = """
import os, signal, sys
from pathlib import Path
calls = []
real = os.replace
def replace(src, dst):
    calls.append(dst)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
from pcbench.cli import cli
cli(["leaderboard", "build", sys.argv[1], "--out", sys.argv[2], "--published", "none"])
"""


def test_kill_9_between_the_renames_is_found_and_repaired(tmp_path):
    out = tmp_path / "tables"
    rec_dir = _built_pair(tmp_path, record("epic-fm", 1e-3))
    res = CliRunner().invoke(cli, ["leaderboard", "build", str(rec_dir), "--out", str(out), "--published", "none"])
    assert res.exit_code == 0, res.output
    md, csv_path = out / "jetnet30-sim_g.md", out / "jetnet30-sim_g.csv"
    old_md, old_csv = md.read_bytes(), csv_path.read_bytes()
    record("epic-fm", 7e-3).write(rec_dir / "epic-fm.json")  # a new number, then kill -9 between the renames
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILL_AT_SECOND_RENAME, str(rec_dir), str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (md.read_bytes() != old_md) != (csv_path.read_bytes() != old_csv)  # exactly one of the pair is new
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # the killed write's temporary file
    # another table built into the folder must not paper over the broken pair: refused, nothing written
    other = _built_pair(tmp_path / "o", record("x", 1e-3, reference="jetnet30:q"))
    res = CliRunner().invoke(cli, ["leaderboard", "build", str(other), "--out", str(out), "--published", "none"])
    _one_line_error(res, "jetnet30-sim_g.md", "disagree", "interrupted build")
    assert not (out / "jetnet30_q.md").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # the dead writer's file: removed
    # the same build again: the pair rewritten and consistent
    res = CliRunner().invoke(cli, ["leaderboard", "build", str(rec_dir), "--out", str(out), "--published", "none"])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert f"repaired: {md} and {csv_path} disagree" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["jetnet30-sim_g.csv", "jetnet30-sim_g.md"]
    assert "7.00 ± 0.10" in md.read_text() and "0.007," in csv_path.read_text()
    md5 = hashlib.md5(csv_path.read_bytes()).hexdigest()
    assert md.read_text().splitlines()[-1] == f"Table data: `jetnet30-sim_g.csv`, md5 {md5}."
    assert pair_problem(md, csv_path) is None


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    """A killed writer's temporary file is removed by the next atomic write into the folder; a live
    writer's, and another host's, are kept."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with atomic_path(tmp_path / "probe.json") as tmp:  # learn this host's name for temporary files
            host = tmp.name.split("@", 1)[1].split(".", 1)[0]
            tmp.write_text("{}")
        names = {"dead": f".epic-fm.json.pcbench-{dead_pid}@{host}.abc123.tmp",
                 "live": f".epic-fm.json.pcbench-{live.pid}@{host}.abc123.tmp",
                 "elsewhere": f".epic-fm.json.pcbench-{dead_pid}@00000000.abc123.tmp",
                 "other": ".notes.txt.tmp"}
        for n in names.values():
            (tmp_path / n).write_text("half")
        record("epic-fm", 1e-3).write(tmp_path / "epic-fm.json")
        left = {p.name for p in tmp_path.iterdir()}
        assert names["dead"] not in left
        assert {names["live"], names["elsewhere"], names["other"], "epic-fm.json", "probe.json"} == left
    finally:
        live.kill()
        live.wait()


def test_demo_writes_outside_the_tracked_tree_by_default(tmp_path, monkeypatch):
    """``pcbench demo`` writes to results/demo (git-ignored); leaderboard/demo only with --out."""
    calls = []
    monkeypatch.setattr(cli_leaderboard, "run_pipeline", lambda cfg, work, out, **kw: calls.append((cfg, work, out)))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["demo"])
    assert res.exit_code == 0, res.output
    [(cfg, work, out)] = calls
    assert cfg.name == "demo" and Path(out) == Path("results/demo") and Path(work) == Path("results/demo-work")
    assert (tmp_path / "results/demo/config.yaml").exists() and not (tmp_path / "leaderboard").exists()
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "results/demo/x.md"])
    assert ignored.returncode == 0  # git ignores the default folder
    res = CliRunner().invoke(cli, ["demo", "--out", "leaderboard/demo"])
    assert res.exit_code == 0 and Path(calls[-1][2]) == Path("leaderboard/demo")


def _rec(model: str, metrics: dict[str, tuple[float, float, float, float, float, str]], reference: str = "jetnet30-sim:g"):
    prov = {"reference": reference, "reference_split": "test", "reference_md5": "a" * 32, "suite_version": "jets-1",
            "config": {"profile": "fast"}, "n_jets": 1000, "seed": 42, "pcbench_version": "0.1.0",
            "samples_md5": "b" * 32, "jet_type": "g", "protocol": SPLIT}
    return EvaluationResult("jets", model, {n: MetricValue(n, v, e, n, sc, t, te, b)
                                            for n, (v, e, sc, t, te, b) in metrics.items()}, prov)


def test_headers_scales_bounds_and_bold_only_beyond_errors():
    """The issue's cases: `kl_mass x1e3` printing 7.42e+03, a KPD truth row 0.0032 ± 0.042, bold on
    overlapping errors, saturated AUCs, and FPND bold on a simulated reference."""
    recs = [_rec("a", {"kl_mass": (7.42, 0.29, 1e3, 0.5, 0.2, "lower"), "kpd": (0.01, 0.001, 1e3, 0.0032, 0.042, "lower"),
                       "w1m": (1.0e-3, 0.2e-3, 1e3, 0.5e-3, 0.1e-3, "lower"), "auc_hl": (0.9995, 0.0004, 1.0, 0.5, 0.01, "closer to 0.5"),
                       "fpnd": (0.5, float("nan"), 1.0, 0.9, float("nan"), "lower")}),
            _rec("b", {"kl_mass": (9.0, 0.3, 1e3, 0.5, 0.2, "lower"), "kpd": (0.02, 0.001, 1e3, 0.0032, 0.042, "lower"),
                       "w1m": (1.3e-3, 0.2e-3, 1e3, 0.5e-3, 0.1e-3, "lower"), "auc_hl": (0.9999, 0.0001, 1.0, 0.5, 0.01, "closer to 0.5"),
                       "fpnd": (2.0, float("nan"), 1.0, 0.9, float("nan"), "lower")})]
    [table] = build_tables(recs)
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[2] == ("| model | KL of jet m/pT (50 bins) | KPD (kernel distance of features) (x10^3) | W1 of jet m/pT (x10^3) "
                        "| AUC, boosted trees on jet observables | FPND to real JetNet30 (not the reference) |")
    assert lines[4] == "| truth vs truth | 0.50 ± 0.20 | < 45 | 0.50 ± 0.10 | 0.500 ± 0.010 | 0.9000 |"
    # kl_mass 7.42 vs 9.00 beyond errors: bold; kpd 10 vs 20 (± 1): bold; w1m 1.0 vs 1.3 (± 0.2 each): overlap, no
    # bold; AUCs saturated: no bold; FPND on a simulated reference (and without error): no bold
    assert lines[5] == "| a | **7.42 ± 0.29** | **10.0 ± 1.0** | 1.00 ± 0.20 | 0.99950 ± 0.00040 | 0.5000 |"
    assert "e+" not in md and "e-0" not in md
    assert "not better than truth" in md and "FPND is a distance to the real JetNet30" in md
    assert "Errors: kl_mass: std over bootstraps" in md and "Published rows" not in md
    assert ("Protocol: the papers' (each model's 1,000 generated jets against the whole reference split, 1,500 jets; "
            "the truth row: 1,000 jets of jetnet30-sim:g, train split, disjoint from the reference, against the same "
            "reference).") in " ".join(md.split())


def test_the_demo_keeps_its_simulated_jets_in_the_cache_and_never_replaces_another_set(tmp_path, monkeypatch):
    """`pcbench datasets` then lists what the demo simulated as jetnet30-sim:g (cached 1/5)."""
    from dataclasses import asdict

    from pcbench.data import Cache, default_registry
    from pcbench.data.simulate import JetSimConfig
    from factories import jetnet_arrays, write_h5

    made = []

    def fake_simulate(target, n, seed, jet_type, output, workers=1, progress=True):  # data.simulate.simulate
        sim = JetSimConfig(jet_type, num_particles=30)
        pf, jf = jetnet_arrays(n, 30, seed)
        made.append(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        return write_h5(output, {"seed": seed, "settings": json.dumps(asdict(sim))}, particle_features=pf,
                        jet_features=jf)

    monkeypatch.setattr(pipeline, "simulate", fake_simulate)
    cache, sim = Cache(tmp_path / "cache"), JetSimConfig("g")
    cached = cache.path(default_registry().get("jetnet30-sim"), default_registry().get("jetnet30-sim").file("g"))
    from pcbench.leaderboard.config import DataConfig

    d = DataConfig(simulate="jetnet30", jet_type="g", n=40, seed=1)
    assert pipeline._simulated_jets(d, sim, tmp_path / "w0", cache, False) == tmp_path / "w0" / "data.h5"  # default
    assert not cached.exists()
    d = dataclasses.replace(d, cache=True)
    assert pipeline._simulated_jets(d, sim, tmp_path / "w1", cache, False) == cached and made[-1] == cached
    assert pipeline._simulated_jets(d, sim, tmp_path / "w2", cache, False) == cached and len(made) == 2  # reused
    other = dataclasses.replace(d, seed=2)  # another set in the cache stays; this run works on its own copy
    assert pipeline._simulated_jets(other, sim, tmp_path / "w3", cache, False) == tmp_path / "w3" / "data.h5"
    assert cache.is_cached(default_registry().get("jetnet30-sim"), default_registry().get("jetnet30-sim").file("g"))
