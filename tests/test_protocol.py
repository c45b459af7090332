"""The evaluation protocol: which rows each table row compares, the truth row's sample and cache,
and the leaderboard's refusal to mix protocols."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.data import Cache, JetSet, default_registry, write
from pcbench.data.loaders import split_indices
from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.errors import IncompatibleError
from pcbench.evaluate import evaluate
from pcbench.evaluate.jets import JetSuiteConfig, jet_suite
from pcbench.evaluate.protocol import half_rows, protocol_text, split_rows
from pcbench.leaderboard.tables import ComparabilityError, build_tables, to_markdown

METRICS = ("w1m", "w1p", "fpd", "kpd")


def _jets(seed: int, n: int, jet_type: str = "g") -> JetSet:
    v = simulate_jet_chunk(JetSimConfig(jet_type), seed=seed, n=n)
    return JetSet.from_jetnet(v["particle_features"], v["jet_features"], jet_type)


@pytest.fixture(scope="module")
def jet_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("protocol")
    ref, gen, other = _jets(31, 400), _jets(32, 100), _jets(33, 150)
    return d, {"ref": write(d / "ref.h5", ref), "gen": write(d / "gen.h5", gen), "truth": write(d / "truth.h5", other),
               "sets": (ref, gen, other)}


def test_split_and_half_rows():
    r = split_rows(5, 8, 20, seed=3, truth_from="x", minimum=2)
    assert r.gen.tolist() == list(range(5)) and r.ref.tolist() == list(range(8))
    assert len(r.truth) == 5 and np.all(np.diff(r.truth) > 0) and r.truth.max() < 20
    assert r.truth.tolist() == sorted(np.random.default_rng(3).permutation(20)[:5].tolist())
    short = split_rows(5, 8, 3, seed=3, truth_from="x", minimum=2)  # the truth sample is smaller: all of it
    assert short.truth.tolist() == [0, 1, 2]
    assert "fewer than generated: the truth sample holds only 3" in protocol_text(short.protocol(), "jets")
    h = half_rows(5, 12, seed=0, minimum=2)
    assert h.n == 5 and len(h.ref) == len(h.truth) == 5 and not set(h.ref) & set(h.truth)
    perm = np.random.default_rng(0).permutation(12)
    assert h.ref.tolist() == sorted(perm[:5].tolist()) and h.truth.tolist() == sorted(perm[5:10].tolist())
    assert half_rows(9, 7, seed=0, minimum=2).n == 3  # n = min(N_gen, N_ref // 2)
    with pytest.raises(IncompatibleError, match="too few jets to evaluate: 9 generated and 7 reference jets"):
        half_rows(9, 7, seed=0, minimum=5, objects="jets")
    assert h.protocol() == {"mode": "halves", "generated_rows": 5, "reference_rows": 5, "truth_rows": 5,
                            "truth_sample": "half B of the reference file"}


def test_a_registered_reference_gets_the_papers_protocol_and_the_truth_row_is_cached(jet_files):
    """jetnet30-sim:g in the (private) cache: the model row is every generated jet against the
    whole test split, the truth row 100 jets of the train split against it; the second run reads
    the truth row from the cache and gives bit-identical numbers."""
    d, f = jet_files
    ref, gen, _ = f["sets"]
    cache = Cache()
    entry = default_registry().get("jetnet30-sim")
    path = cache.path(entry, entry.file("g"))
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, ref)
    r1 = evaluate(f["gen"], "jetnet30-sim:g", profile="fast", metrics=METRICS)
    test, train = (ref.subset(split_indices(len(ref), s)) for s in ("test", "train"))
    assert r1.provenance["protocol"] == {"mode": "split", "generated_rows": 100, "reference_rows": len(test),
                                         "truth_rows": 100, "truth_sample": "jetnet30-sim:g train split"}
    assert r1.provenance["truth_split"] == "train" and r1.provenance["reference_split"] == "test"
    assert r1.provenance["truth_row_cached"] is False
    cfg = dataclasses.replace(JetSuiteConfig.named("fast"), metrics=METRICS)
    direct, _, _ = jet_suite(gen, test, cfg, "g", truth=train, truth_from="jetnet30-sim:g train split")
    for name, m in r1.metrics.items():
        assert (m.value, m.error, m.truth, m.truth_error) == (direct[name].value, direct[name].error,
                                                              direct[name].truth, direct[name].truth_error), name
    stored = list((cache.root / "truth-rows").glob("*.json"))
    assert len(stored) == 1
    r2 = evaluate(f["gen"], "jetnet30-sim:g", profile="fast", metrics=METRICS)
    assert r2.provenance["truth_row_cached"] is True and r2.metrics == r1.metrics
    # another model against the same reference reuses the same truth row
    other = write(d / "other_model.h5", gen.subset(slice(0, 100)))
    r3 = evaluate(other, "jetnet30-sim:g", profile="fast", metrics=METRICS)
    assert r3.provenance["truth_row_cached"] is True
    # a cached entry is the settings' own: another profile computes its own
    r4 = evaluate(f["gen"], "jetnet30-sim:g", profile="fast", metrics=("w1m",))
    assert r4.provenance["truth_row_cached"] is False and len(list((cache.root / "truth-rows").glob("*.json"))) == 2
    # --truth halves on a registered reference: its test split's halves
    r5 = evaluate(f["gen"], "jetnet30-sim:g", profile="fast", metrics=("w1m",), truth="halves")
    assert r5.provenance["protocol"]["mode"] == "halves" and r5.provenance["protocol"]["reference_rows"] == len(test) // 2


def test_one_reference_file_uses_its_halves_and_a_truth_file_the_papers_protocol(jet_files, tmp_path):
    d, f = jet_files
    res = CliRunner().invoke(cli, ["evaluate", str(f["gen"]), "--reference", str(f["ref"]), "--profile", "fast",
                                   "--metrics", "w1m,fpd", "--out", str(tmp_path / "halves")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert ("Protocol: halves of one reference file (not the papers' protocol): each model's first 100 generated jets "
            "against half A (100 jets) of the reference; the truth row: half B (100) against half A.") in text
    assert "--truth FILE" in text
    res = CliRunner().invoke(cli, ["evaluate", str(f["gen"]), "--reference", str(f["ref"]), "--profile", "fast",
                                   "--metrics", "w1m,fpd", "--truth", str(f["truth"]), "--out", str(tmp_path / "split")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert ("Protocol: the papers' (each model's 100 generated jets against the whole reference split, 400 jets; the "
            "truth row: 100 jets of the file truth.h5, disjoint from the reference, against the same reference).") in text
    halves = json.loads((tmp_path / "halves" / "gen.json").read_text())
    split = json.loads((tmp_path / "split" / "gen.json").read_text())
    assert split["provenance"]["truth_md5"] and split["provenance"]["protocol"]["reference_rows"] == 400
    # the leaderboard refuses to table them together, naming the protocol
    from pcbench.evaluate import EvaluationResult

    recs = [EvaluationResult.from_json(json.dumps(halves)), EvaluationResult.from_json(json.dumps(split))]
    recs[1].model = "other"
    with pytest.raises(ComparabilityError, match="has protocol = "):
        build_tables(recs)
    [table] = build_tables([recs[1]])
    assert "Protocol: the papers'" in " ".join(to_markdown(table).split())


@pytest.mark.parametrize("truth, needles", [
    ("missing.h5", ("--truth 'TMP/missing.h5'", "expected auto, halves or an existing HDF5 file")),
    ("showers.h5", ("--truth TMP/showers.h5 holds voxel showers", "the reference")),
    ("jets150.h5", ("the truth sample 150", "jetnet30: 30")),
])
def test_a_bad_truth_option_is_a_one_line_error(jet_files, tmp_path, truth, needles):
    from factories import calochallenge_arrays, write_h5

    d, f = jet_files
    if truth == "showers.h5":
        e, v = calochallenge_arrays(20, 6480)
        write_h5(tmp_path / truth, showers=v, incident_energies=e)
    elif truth == "jets150.h5":  # 150-particle jets beside a 30-particle reference
        pf = np.zeros((20, 150, 4), np.float32)
        pf[:, :5, 0], pf[:, :5, 2], pf[:, :5, 3] = np.linspace(-0.2, 0.2, 5), 0.2, 1
        with h5py.File(tmp_path / truth, "w") as h:
            h["particle_features"], h["jet_features"] = pf, np.tile([[500.0, 0.1, 50.0, 5.0]], (20, 1)).astype(np.float32)
    res = CliRunner().invoke(cli, ["evaluate", str(f["gen"]), "--reference", str(f["ref"]), "--profile", "fast",
                                   "--metrics", "w1m", "--truth", str(tmp_path / truth), "--out", str(tmp_path / "out")])
    assert res.exit_code == (2 if truth == "missing.h5" else 1) and "Traceback" not in res.output, res.output  # 2: usage
    error = " ".join(res.output.split()).replace(str(tmp_path), "TMP")
    assert error.startswith("error: ") and len([ln for ln in res.output.splitlines() if ln.startswith("error")]) == 1
    for needle in needles:
        assert needle in error, (needle, error)
    assert not (tmp_path / "out" / "gen.json").exists()  # nothing half-written


def test_the_truth_store_serves_exact_values_and_recomputes_a_damaged_entry(tmp_path):
    from pcbench.evaluate.truth_cache import TruthStore

    calls = []

    def compute():
        calls.append(1)
        return {"fpd": (0.1 + 0.2, 1 / 3), "fpnd": (2.5, float("nan"))}, {"n": 3}

    store = TruthStore(tmp_path, {"reference": "a" * 32})
    first = store.get_or_compute({"seed": 42}, compute)
    again = store.get_or_compute({"seed": 42}, compute)
    assert calls == [1] and store.hits == 1
    assert again[0]["fpd"] == (0.1 + 0.2, 1 / 3) and np.isnan(again[0]["fpnd"][1]) and again[1] == {"n": 3}
    store.get_or_compute({"seed": 43}, compute)  # other settings: another entry
    assert len(calls) == 2 and len(list(tmp_path.glob("*.json"))) == 2
    path = tmp_path / f"{store.key({'seed': 42})}.json"
    path.write_text(path.read_text()[:40])  # cut off
    assert store.get_or_compute({"seed": 42}, compute)[0] == first[0] or np.isnan(first[0]["fpnd"][1])
    assert len(calls) == 3 and json.loads(path.read_text())["values"]["fpd"] == [0.1 + 0.2, 1 / 3]
    assert TruthStore(None).get_or_compute({"seed": 42}, compute) and len(calls) == 4  # no folder: computed


def test_a_change_of_the_metric_code_is_a_new_truth_entry(tmp_path, monkeypatch):
    """The key holds the md5 of the metric and suite sources: an entry written by other arithmetic
    (even at rounding level) is never served."""
    import pcbench.evaluate.truth_cache as tc

    metrics = Path(tc.__file__).resolve().parents[1] / "metrics"
    assert len(tc.code_identity()) == 32 and sorted(metrics.glob("*.py"))  # the sources it reads
    calls = []
    store = tc.TruthStore(tmp_path, {"reference": "b" * 32})
    store.get_or_compute({"seed": 1}, lambda: calls.append(1) or ({"kpd": (1.0, 0.1)}, {}))
    monkeypatch.setattr(tc, "_CODE_IDENTITY", "0" * 32)  # as if a metric's source had changed
    store.get_or_compute({"seed": 1}, lambda: calls.append(1) or ({"kpd": (1.0000001, 0.1)}, {}))
    assert len(calls) == 2 and len(list(tmp_path.glob("*.json"))) == 2
