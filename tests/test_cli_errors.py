"""Bad input through the command line: one line naming the value and what was expected, the
right exit code (2: a bad option value, 1: bad data), no traceback, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli_checks import assert_one_line_error
from factories import calochallenge_arrays, jetnet_arrays, write_h5
from pcbench.cli import cli
from pcbench.data import formats
from pcbench.data.containers import ShowerPointSet
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk


def run(args: list[str], code: int, *needles: str) -> str:
    """Invoke the CLI; assert the exit code, no traceback and every needle: in the one error line
    where the command fails (``validate`` reports its problems below a summary line instead)."""
    res = CliRunner().invoke(cli, [str(a) for a in args])
    if code and args[0] != "validate":
        assert_one_line_error(res, code, *needles)
        return res.output
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in res.output, res.output
    return res.output


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    out = {}
    pf, jf = jetnet_arrays(400, 30, 0)
    out["ref"] = write_h5(d / "ref.h5", particle_features=pf, jet_features=jf)
    pf, jf = jetnet_arrays(100, 30, 1)
    out["gen"] = write_h5(d / "gen.h5", particle_features=pf, jet_features=jf)
    out["gen5"] = write_h5(d / "gen5.h5", particle_features=pf[:5], jet_features=jf[:5])
    out["gen0"] = write_h5(d / "gen0.h5", particle_features=pf[:0], jet_features=jf[:0])
    for p in (29, 150):
        pf, jf = jetnet_arrays(100, p, 2)
        out[f"gen{p}"] = write_h5(d / f"gen{p}.h5", particle_features=pf, jet_features=jf)
    inc, sh = calochallenge_arrays(40, 368, 0)
    out["vox368"] = write_h5(d / "vox368.h5", incident_energies=inc, showers=sh)
    inc, sh = calochallenge_arrays(40, 6480, 1)
    out["vox6480"] = write_h5(d / "vox6480.h5", incident_energies=inc, showers=sh)
    out["not_ckpt"] = d / "notes.pt"
    out["not_ckpt"].write_bytes(b"these are my notes, not a checkpoint")
    out["dir"] = d
    return out


# ---- evaluate ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key, code, needles", [
    ("gen0", 1, ["gen0.h5 is not a valid sample file", "particle_features: 0 rows", "no usable sample"]),
    ("gen5", 1, ["too few jets to evaluate: 5 generated", "at least 10 generated"]),
    ("gen29", 1, ["29 particle slots, the reference 30"]),
    ("gen150", 1, ["150 particle slots, the reference 30"]),
])
def test_evaluate_refuses_unusable_jet_samples(files, tmp_path, key, code, needles):
    run(["evaluate", files[key], "--reference", files["ref"], "--profile", "fast", "--out", tmp_path], code, *needles)
    assert not list(tmp_path.glob("*.json"))  # no record (the log says why it stopped)


def test_a_misspelt_metric_is_an_error_and_leaves_the_existing_record(files, tmp_path):
    run(["evaluate", files["gen"], "--reference", files["ref"], "--profile", "fast", "--out", tmp_path,
         "--metrics", "w1m"], 0)
    record = (tmp_path / "gen.json").read_text()
    assert json.loads(record)["metrics"]["w1m"]["value"] > 0
    run(["evaluate", files["gen"], "--reference", files["ref"], "--profile", "fast", "--out", tmp_path,
         "--metrics", "w1mm"], 2, "unknown metric(s) 'w1mm' for the jet suite", "known: w1m, w1p")
    assert (tmp_path / "gen.json").read_text() == record


def test_fpnd_needs_the_jet_class_and_says_so(files, tmp_path):
    """The reference is neither named g/q/t nor has a jet_type: FPND asked for is an error naming
    --jet-type; with --jet-type it is computed (and the record keeps the class)."""
    run(["evaluate", files["gen"], "--reference", files["ref"], "--profile", "fast", "--out", tmp_path,
         "--metrics", "fpnd"], 2, "fpnd was requested but cannot be computed", "the jet class is unknown",
        "--jet-type g|q|t")
    run(["evaluate", files["gen"], "--reference", files["ref"], "--profile", "fast", "--out", tmp_path,
         "--metrics", "fpnd,w1m", "--jet-type", "q"], 0)
    rec = json.loads((tmp_path / "gen.json").read_text())
    assert rec["provenance"]["jet_type"] == "q" and rec["provenance"]["fpnd"] == "computed"
    assert rec["metrics"]["fpnd"]["value"] > 0
    # all metrics, class unknown: FPND is skipped and the record names the real cause
    run(["evaluate", files["gen"], "--reference", files["ref"], "--profile", "fast", "--out", tmp_path,
         "--metrics", "w1m"], 0)
    rec = json.loads((tmp_path / "gen.json").read_text())
    assert rec["provenance"]["fpnd"].startswith("skipped: the jet class is unknown")


def test_voxel_samples_on_another_geometry_are_refused(files, tmp_path):
    run(["evaluate", files["vox368"], "--reference", files["vox6480"], "--profile", "fast", "--out", tmp_path], 1,
        "368 voxels per shower (calochallenge-1-photons)", "6480 (calochallenge-2)", "same geometry")
    assert not list(tmp_path.glob("*.json"))


def test_voxel_samples_whose_geometry_attribute_contradicts_their_width(files, tmp_path):
    bad = files["dir"] / "vox368_says_ds2.h5"
    inc, sh = calochallenge_arrays(40, 368, 3)
    write_h5(bad, attrs={"geometry": "calochallenge-2"}, incident_energies=inc, showers=sh)
    # validation already names the mismatch between the attribute's geometry and the voxel count
    run(["evaluate", bad, "--reference", files["vox6480"], "--profile", "fast", "--out", tmp_path], 1, "368")


def test_a_registry_name_without_files_names_what_to_pass(files, tmp_path):
    run(["evaluate", files["vox368"], "--reference", "ild-photons", "--out", tmp_path], 1,
        "ild-photons lists no files", "--reference FILE", "ild-photons-param:train")


@pytest.mark.parametrize("make", ["file_parent", "file_itself"])
def test_an_unwritable_out_is_refused_before_any_work(files, tmp_path, make):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "results" if make == "file_parent" else blocker
    run(["evaluate", files["gen"], "--reference", files["ref"], "--out", out], 2, "--out", "a_file")


def test_an_empty_generated_ild_shower_counts_instead_of_crashing(tmp_path):
    """One generated shower without hits: before, 'W1 scores need 5 x 30 = 150 showers, got 150 and 149'."""
    ref = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 11, 100)
    gen = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 12, 50)
    gen["points"][3] = 0.0
    as_set = [ShowerPointSet(d["points"], d["points"][..., 3] > 0, d["incident_energy"]) for d in (ref, gen)]
    rp = formats.write(tmp_path / "ref.h5", as_set[0], layout="ild")
    gp = formats.write(tmp_path / "gen.h5", as_set[1], layout="ild")
    run(["evaluate", gp, "--reference", rp, "--profile", "fast", "--out", tmp_path / "o",
         "--metrics", "w1_n_hits,w1_cog_x,w1_e_ratio"], 0)
    rec = json.loads((tmp_path / "o" / "gen.json").read_text())
    assert rec["provenance"]["empty_generated_showers"] == 1
    assert all(np.isfinite(rec["metrics"][k]["value"]) for k in ("w1_n_hits", "w1_cog_x", "w1_e_ratio"))


# ---- train ------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, needles", [
    (["--seed", "-1"], ["'--seed': -1 is not in the range x>=0"]),
    (["--epochs", "0"], ["'--epochs': 0 is not in the range x>=1"]),
    (["--set", "epochs=abc"], ["--set epochs=abc: expected an integer"]),
    (["--set", "nosuch=1"], ["--set nosuch: epic-gan has no setting 'nosuch'", "its settings: batch_size"]),
    (["--set", "epochs"], ["--set 'epochs': expected KEY=VALUE"]),
    (["--device", "gpu"], ["--device 'gpu': expected cpu, cuda or cuda:N"]),
    (["--resume"], ["--resume:", "last.pt does not exist"]),
    (["--max-minutes", "-3"], ["'--max-minutes'"]),
    (["--clock", "gpu"], ["'--clock': 'gpu' is not one of 'wall', 'cpu'"]),
])
def test_train_refuses_bad_options_before_any_work(files, tmp_path, extra, needles):
    run(["train", "epic-gan", "--data-file", files["ref"], "--out", tmp_path / "m", *extra], 2, *needles)
    assert not (tmp_path / "m" / "last.pt").exists()


def test_train_on_cuda_without_cuda_says_how_to_get_it(files, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run(["train", "epic-gan", "--data-file", files["ref"], "--out", tmp_path, "--device", "cuda"], 2,
        "--device cuda: CUDA is not available here", "CUDA build")


def test_train_refuses_data_of_the_other_kind(files, tmp_path):
    run(["train", "epic-gan", "--data-file", files["vox6480"], "--out", tmp_path], 1,
        "holds voxel showers, but a jet model trains on jets")
    run(["train", "caloclouds2", "--data-file", files["ref"], "--out", tmp_path], 1, "holds jets")


def test_train_registry_names_without_files_and_a_missing_teacher(files, tmp_path):
    run(["train", "caloclouds2", "--data", "ild-photons", "--out", tmp_path], 1, "ild-photons lists no files",
        "--data-file FILE")
    run(["train", "caloclouds2-cm", "--data-file", files["vox6480"], "--out", tmp_path], 2, "give --teacher CKPT")


def test_train_records_the_jet_class_given_on_the_command_line(files, tmp_path):
    run(["train", "independent", "--data-file", files["ref"], "--out", tmp_path, "--jet-type", "t"], 0, "trained")
    payload = torch.load(tmp_path / "last.pt", weights_only=False)
    assert payload["provenance"]["jet_type"] == "t"


# ---- sample -----------------------------------------------------------------------------------

def test_sample_refuses_files_that_are_not_checkpoints(files, tmp_path):
    run(["sample", files["not_ckpt"], "-o", tmp_path / "s.h5"], 1, "not a readable torch checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    run(["sample", other, "-o", tmp_path / "s.h5"], 1, "a torch file, but not a pcbench checkpoint")
    assert not (tmp_path / "s.h5").exists()


def test_sample_refuses_a_truncated_checkpoint(files, tmp_path):
    run(["train", "independent", "--data-file", files["ref"], "--out", tmp_path / "m"], 0)
    data = (tmp_path / "m" / "last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    run(["sample", cut, "-o", tmp_path / "s.h5", "-n", "10"], 1, "truncated, corrupt", f"{len(data) // 2:,} bytes")


@pytest.mark.parametrize("extra, needles", [
    (["-n", "0"], ["'-n' / '--num': 0 is not in the range x>=1"]),
    (["-n", "-5"], ["'-n' / '--num': -5 is not in the range x>=1"]),
    (["--seed", "-1"], ["'--seed': -1 is not in the range x>=0"]),
    (["--batch-size", "0"], ["'--batch-size': 0 is not in the range x>=1"]),
])
def test_sample_refuses_bad_counts(files, tmp_path, extra, needles):
    run(["sample", files["not_ckpt"], "-o", tmp_path / "s.h5", *extra], 2, *needles)


def test_sample_checks_its_output_folder_first(files, tmp_path):
    run(["sample", files["not_ckpt"], "-o", tmp_path / "missing" / "s.h5"], 2, "-o", "does not exist; create it first")


def test_a_budget_that_stops_training_early_says_so_and_sample_warns(tmp_path):
    """The issue's case: the budget ends in ShowerFlow; the point model never trains a step.  (The one
    training loop stops after the unit that ends past the budget, as --max-minutes says: one
    ShowerFlow epoch runs even on a budget spent before it starts.)"""
    d = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 5, 24)
    data = formats.write(tmp_path / "train.h5", ShowerPointSet(d["points"], d["points"][..., 3] > 0,
                                                                 d["incident_energy"]), layout="ild")
    tiny = ["widths=[8,8]", "flow_transforms=1", "flow_hidden=[8]", "flow_epochs=50", "flow_batch_size=8",
            "diffusion_steps=6", "batch_size=4", "points_per_shower=16", "num_steps=2"]
    out = run(["train", "caloclouds2", "--data-file", data, "--out", tmp_path / "m", "--max-minutes", "1e-6",
               *[a for s in tiny for a in ("--set", s)]], 0, "unfinished:", "ShowerFlow (1 of 50 epochs)",
              "point model (0 of 6 steps)", "occupancy calibration (not fitted)")
    assert "trained caloclouds2" not in out
    payload = torch.load(tmp_path / "m" / "last.pt", weights_only=False)
    assert payload["train_state"]["finished"] is False
    run(["sample", tmp_path / "m" / "last.pt", "-n", "4", "-o", tmp_path / "s.h5", "--energies-from", data], 0,
        "warning:", "is unfinished", "point model (0 of 6 steps)")


def test_a_diverged_jet_training_stops_with_one_line_and_no_checkpoint_of_it(files, tmp_path, monkeypatch):
    """Before: PC-JeDi's weights went NaN at 150 particles and nothing said so until sampling
    refused a file of NaN jets."""
    from pcbench.models.registry import generator_class

    monkeypatch.setattr(generator_class("epic-fm"), "training_step", lambda self, x, opts, mods: {"loss": float("nan")})
    run(["train", "epic-fm", "--data-file", files["ref"], "--out", tmp_path / "m", "--epochs", "3",
         "--val-every", "0"], 1, "epic-fm: training diverged in epoch 1: loss 'loss' is nan")
    assert not (tmp_path / "m" / "last.pt").exists()


def test_a_finished_jet_run_is_not_called_unfinished(files, tmp_path):
    out = run(["train", "epic-gan", "--data-file", files["ref"], "--out", tmp_path, "--epochs", "1",
               "--set", "batch_size=64", "--val-every", "0"], 0, "trained epic-gan")
    assert "unfinished" not in out


# ---- geometry, validate -----------------------------------------------------------------------

@pytest.mark.parametrize("png", [False, True])
def test_geometry_show_refuses_a_layer_out_of_range(tmp_path, png):
    extra = ["--png", tmp_path / "l.png"] if png else []
    run(["geometry", "show", "calochallenge-2", "--layer", "99", *extra], 2, "--layer 99: calochallenge-2 has layers 0..44")
    assert not (tmp_path / "l.png").exists()


def test_geometry_show_prints_the_layer_asked_for():
    out = run(["geometry", "show", "calochallenge-2", "--layer", "3"], 0, "layer 3")
    assert "144 cells" in out  # data set 2: 16 alpha x 9 r bins in every layer


def test_validate_calls_a_file_without_rows_unusable(files):
    run(["validate", files["gen0"]], 1, "0 rows")


def test_a_valid_file_still_validates(files):
    with h5py.File(files["gen"], "r") as f:
        n = len(f["particle_features"])
    run(["validate", files["gen"]], 0, f"{n} rows")
