"""``pcbench compare``: the multiclass log-posterior (CaloChallenge 2022, EPiC-FM) ranks models with
known distortions in their known order, gives log(1/C) for identical ones, repeats bit for bit, and
the command runs end to end on tiny jet files with one-line errors for bad input."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import norm

from cli_checks import assert_one_line_error
from factories import calochallenge_arrays, jetnet_arrays, write_h5
from pcbench._io import file_md5
from pcbench.cli import cli
from pcbench.evaluate.display import fmt_value
from pcbench.metrics.dnn_classifier import DNNSettings
from pcbench.metrics.multiclass import MulticlassSettings, multiclass_log_posterior

SHIFTS = (0.0, 0.3, 1.0)  # in units of the reference's sigma, along the first of 3 features
N = 600  # objects per class


pytestmark = pytest.mark.usefixtures("one_thread")


def gaussians(shifts: tuple[float, ...], seed: int = 0, n: int = N) -> tuple[np.ndarray, list[np.ndarray]]:
    """A standard normal reference in 3 dimensions and one sample per shift of its first feature."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, 3))
    return ref, [rng.normal(size=(n, 3)) + np.array([s, 0.0, 0.0]) for s in shifts]


def bayes_log_posterior(shifts: tuple[float, ...], c: int) -> float:
    """E_{x ~ N(0, 1)}[log p(c | x)] of the exact posterior among unit normals at ``shifts``."""
    x = np.linspace(-10, 10, 40_001)
    dens = np.array([norm.pdf(x - s) for s in shifts])
    return float(np.sum(norm.pdf(x) * np.log(dens[c] / dens.sum(0))) * (x[1] - x[0]))


FAST = MulticlassSettings.named("fast", hgb_max_iter=60)


@pytest.mark.parametrize("reference_class", [False, True])
def test_known_distortions_rank_in_their_order(reference_class):
    ref, samples = gaussians(SHIFTS)
    res = multiclass_log_posterior(ref, samples, replace(FAST, reference_class=reference_class))
    values = [m.log_posterior for m in res.models]
    errors = [m.error for m in res.models]
    for a, b in ((0, 1), (1, 2)):  # strictly ordered, each gap beyond twice the combined error
        assert values[a] - values[b] > 2 * math.hypot(errors[a], errors[b]), (values, errors)
    classes = (*SHIFTS, 0.0) if reference_class else SHIFTS  # the reference is the last class
    assert res.n_classes == len(classes) and res.perfect == math.log(1 / len(classes))
    # the undistorted model: above log(1/C) and near the Bayes-optimal classifier's value
    assert values[0] > res.perfect
    assert abs(values[0] - bayes_log_posterior(classes, 0)) < 0.05
    for m in res.models:  # fold errors positive and finite; one value per fold
        assert 0 < m.error < 1 and math.isfinite(m.error) and len(m.folds) == FAST.folds
        assert 0 < m.self_error < 1 and math.isfinite(m.self_error)
        assert len(m.crosscheck) == len(m.confusion) == res.n_classes and math.isclose(sum(m.confusion), 1.0)
    assert res.models[2].crosscheck[2] == max(res.models[2].crosscheck)  # the far model knows itself
    assert 0 < res.accuracy_error < 1 and res.accuracy > res.chance
    if reference_class:  # log p(reference | model's objects): the undistorted one highest, near log(1/4)
        ref_lp = [m.reference_log_posterior for m in res.models]
        assert ref_lp[0] > ref_lp[1] > ref_lp[2]
        assert abs(ref_lp[0] - math.log(1 / 4)) < 0.1
        assert all(m.reference_error > 0 and math.isfinite(m.reference_error) for m in res.models)
    else:
        assert all(m.reference_log_posterior is None for m in res.models)


@pytest.mark.parametrize("reference_class", [False, True])
def test_identical_samples_give_log_one_over_c_within_errors(reference_class):
    ref, samples = gaussians((0.0, 0.0, 0.0), seed=1)
    res = multiclass_log_posterior(ref, samples, MulticlassSettings.named("fast", hgb_max_iter=60,
                                                                          reference_class=reference_class))
    c = 3 + reference_class
    assert res.perfect == math.log(1 / c)
    for m in res.models:
        assert abs(m.log_posterior - math.log(1 / c)) <= 3 * m.error + 0.01, (m.log_posterior, m.error)
        if reference_class:
            assert abs(m.reference_log_posterior - math.log(1 / c)) <= 3 * m.reference_error + 0.01
    assert abs(res.accuracy - 1 / c) < 0.05


@pytest.mark.parametrize("settings", [
    MulticlassSettings(dnn=DNNSettings(n_hidden=16, epochs=4, batch_size=64, lr=1e-3)),
    MulticlassSettings.named("fast", hgb_max_iter=20, reference_class=True),
], ids=["dnn", "hgb"])
def test_seeded_repeatable_bit_for_bit(settings):
    ref, samples = gaussians((0.0, 0.5), seed=2, n=200)
    first = multiclass_log_posterior(ref, samples, settings)
    again = multiclass_log_posterior(ref.copy(), [s.copy() for s in samples], settings)
    assert first == again  # every float equal, to the bit
    other = multiclass_log_posterior(ref, samples, replace(settings, seed=7))
    assert other.models[0].log_posterior != first.models[0].log_posterior


def test_inputs_are_checked_and_non_finite_rows_dropped():
    ref, samples = gaussians((0.0, 0.5), seed=3, n=60)
    with pytest.raises(ValueError, match="at least 2"):
        multiclass_log_posterior(ref, samples[:1], FAST)
    with pytest.raises(ValueError, match="different numbers of columns"):
        multiclass_log_posterior(ref, [samples[0], samples[1][:, :2]], FAST)
    with pytest.raises(ValueError, match="folds need at least 10"):
        multiclass_log_posterior(ref[:9], samples, FAST)
    samples[1][:5, 0] = np.nan
    res = multiclass_log_posterior(ref, samples, MulticlassSettings.named("fast", hgb_max_iter=5))
    assert res.dropped == (0, 0, 5) and res.n_per_class == 55


# ---- the command, end to end, on tiny jet files


@pytest.fixture(scope="module")
def jet_files(tmp_path_factory) -> dict[str, Path]:
    """A reference, three samples (undistorted, eta widened by 1.5, eta and phi by 3), others for errors."""
    d = tmp_path_factory.mktemp("compare")
    out = {}
    pf, jf = jetnet_arrays(300, 30, 0)
    out["ref"] = write_h5(d / "ref.h5", particle_features=pf, jet_features=jf)
    for seed, name, scale in ((1, "good", (1.0, 1.0)), (2, "wide", (1.5, 1.0)), (3, "bad", (3.0, 3.0))):
        pf, jf = jetnet_arrays(200, 30, seed)
        pf[..., 0] *= scale[0]
        pf[..., 1] *= scale[1]
        out[name] = write_h5(d / f"{name}.h5", particle_features=pf, jet_features=jf)
    pf, jf = jetnet_arrays(50, 29, 4)
    out["p29"] = write_h5(d / "p29.h5", particle_features=pf, jet_features=jf)
    out["empty"] = write_h5(d / "empty.h5", particle_features=pf[:0], jet_features=jf[:0])
    inc, sh = calochallenge_arrays(40, 368, 0)
    out["vox"] = write_h5(d / "vox.h5", incident_energies=inc, showers=sh)
    out["dir"] = d
    return out


def test_cli_ranks_tiny_jet_files_and_records_everything(jet_files):
    f = jet_files
    out = f["dir"] / "out"
    res = CliRunner().invoke(cli, ["compare", str(f["good"]), str(f["wide"]), str(f["bad"]), "--reference",
                                   str(f["ref"]), "--profile", "fast", "--out", str(out), "--name", "good",
                                   "--name", "wide", "--name", "bad"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "mean log p(model | reference object): mean over held-out reference objects" in text
    assert "Equally good models give log(1/C) = -1.0986 (C = 3 classes" in text
    assert "± errors: std over the K folds" in text and "multiclass accuracy" in text
    record = json.loads((out / "compare_good_wide_bad.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    models = {m["name"]: m for m in record["models"]}
    md = (out / "compare_good_wide_bad.md").read_text()
    assert [models[n]["rank"] for n in ("good", "wide", "bad")] == [1, 2, 3]
    for name in ("good", "wide", "bad"):
        m = models[name]
        assert m["samples_md5"] == file_md5(f[name]) and m["samples_rows"] == 200 and m["parameterised"] is False
        lp = m["log_posterior"]
        assert lp["value"] < 0 and 0 < lp["error"] < 1 and lp["definition"].startswith("mean over held-out")
        shown = fmt_value(lp["value"], lp["error"])  # printed with its error
        assert shown in md and shown.split(" ±")[0] in res.output
    prov = record["provenance"]
    assert prov["seed"] == 42 and prov["profile"] == "fast" and prov["settings"]["classifier"] == "hgb"
    assert prov["pcbench_version"] and "fingerprint" in prov["hardware"] and prov["reference_md5"] == file_md5(f["ref"])
    assert record["summary"]["perfect"] == math.log(1 / 3) and record["summary"]["n_per_class"] == 200
    assert md.count("\n| ") == 5 and "| 1 | **good** | **" in md and "std over the K folds" in md


@pytest.mark.parametrize("args, code, fragments", [
    (["good", "--reference", "ref"], 2, ["at least two sample files, got 1"]),
    (["good", "missing", "--reference", "ref"], 2, ["missing.h5", "does not exist"]),
    (["good", "vox", "--reference", "ref"], 1, ["different kinds of data", "good.h5 jets", "vox.h5 voxel-showers"]),
    (["good", "p29", "--reference", "ref"], 1, ["different particle counts", "p29.h5 29", "the reference"]),
    (["good", "wide", "--reference", "vox"], 1, ["the samples hold jets", "vox.h5 holds voxel showers"]),
    (["good", "empty", "--reference", "ref"], 1, ["empty.h5 is not a valid sample file", "0 rows"]),
    (["good", "wide", "--reference", "ref", "--name", "a"], 2, ["--name given 1 time(s) for 2 samples"]),
    (["good", "good", "--reference", "ref"], 2, ["both named 'good'"]),
])
def test_cli_bad_input_is_one_line(jet_files, args, code, fragments):
    f = jet_files
    argv = ["compare"] + [str(f[a]) if a in f else (str(f["dir"] / "missing.h5") if a == "missing" else a)
                          for a in args] + ["--profile", "fast", "--out", str(f["dir"] / "err")]
    assert_one_line_error(CliRunner().invoke(cli, argv), code, *fragments)
