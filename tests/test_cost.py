"""``pcbench time`` and ``pcbench.models.cost``: FLOPs and parameters against hand counts, a timing
of real tiny checkpoints (a jet GAN, the shower baseline), the JSON record, seeded repeatability,
the thread settings restored, and the command line's table and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.nn.utils.parametrizations import weight_norm

from cli_checks import assert_one_line_error
from factories import jetnet_arrays
from pcbench.cli import cli
from pcbench.data import JetSet
from pcbench.data.containers import ShowerPointSet
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk
from pcbench.errors import UsageError
from pcbench.models import TrainOptions, load_generator, model_config, train
from pcbench.models.cost import (CostRecord, PeakMemory, count_flops, count_parameters, measure_cost, objects_md5,
                                 sample_objects)


@pytest.fixture(scope="module")
def gan_ckpt(tmp_path_factory) -> Path:
    pf, jf = jetnet_arrays(96, 30, 0)
    jets = JetSet.from_jetnet(pf, jf, "g")
    cfg = model_config("epic-gan", "small", hidden=16, gen_layers=1, disc_layers=1, batch_size=32)
    return train("epic-gan", cfg, jets, TrainOptions(epochs=1, out_dir=tmp_path_factory.mktemp("gan"), val_every=0,
                                                     progress=False))


@pytest.fixture(scope="module")
def gan_record(gan_ckpt) -> CostRecord:
    return measure_cost(gan_ckpt, "cpu", batches=(1, 50), threads=(1,), repeats=3, warmup=1, seed=4)


# ---- FLOPs and parameters: hand counts ------------------------------------------------------

def test_flop_counter_equals_the_hand_count_of_a_small_mlp():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    b = 7
    x = torch.randn(b, 3)
    flops, by_op, used, out = count_flops(lambda: mlp(x), mlp)
    assert flops == 2 * b * (3 * 5 + 5 * 2) == 350  # 2 FLOPs per multiply-add; ReLU and bias count nothing
    assert by_op == {"aten.addmm": 350}
    assert used == 3 * 5 + 5 + 5 * 2 + 2 == 32  # every parameter was read
    assert out.shape == (b, 2) and all(p.requires_grad for p in mlp.parameters())  # flags restored


def test_flop_count_of_a_weight_normed_layer_in_inference_mode():
    """FlopCounterMode's module tracker fails on parametrised layers under inference mode unless the
    parameters stop requiring grad; count_flops does that, and the count is still the matmul's."""
    lin = weight_norm(torch.nn.Linear(4, 6))
    x = torch.randn(10, 4)
    with torch.inference_mode():
        flops, _, used, _ = count_flops(lambda: lin(x), lin)
    assert flops == 2 * 10 * 4 * 6
    assert used == 6 * 4 + 6 + 6  # original0 (g: 6), original1 (v: 6x4), bias 6
    assert all(p.requires_grad for p in lin.parameters())


def test_parameter_counts_equal_hand_counts_and_unused_parts_are_not_read():
    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gen = torch.nn.Linear(3, 4)     # 16 parameters, used
            self.critic = torch.nn.Linear(4, 1)  # 5 parameters, frozen, never called by sample
            self.critic.requires_grad_(False)
            self.register_buffer("pool", torch.zeros(11))

    m = Two()
    counts = count_parameters(m)
    assert counts == {"total": 21, "trainable": 16, "by_part": {"gen": 16, "critic": 5}, "buffer_elements": 11}
    _, _, used, _ = count_flops(lambda: m.gen(torch.ones(2, 3)), m)
    assert used == 16


# ---- a real tiny checkpoint ----------------------------------------------------------------

def test_timing_a_tiny_jet_gan_gives_positive_finite_numbers(gan_record, gan_ckpt):
    r = gan_record
    assert r.model == "epic-gan" and r.kind == "jets" and r.device == "cpu" and r.seed == 4
    assert [(t.batch, t.threads) for t in r.timings] == [(1, 1), (50, 1)]
    for t in r.timings:
        assert len(t.repeats_ms_per_object) == 3 and all(math.isfinite(x) and x > 0 for x in t.repeats_ms_per_object)
        assert t.ms_per_object == pytest.approx(np.mean(t.repeats_ms_per_object))
        assert t.ms_per_object_std == pytest.approx(np.std(t.repeats_ms_per_object, ddof=1))
        assert t.repeatable and len(t.samples_md5) == 32
        assert 1 <= t.mean_constituents <= 30
        if r.memory_method != "unavailable":
            assert t.peak_memory_mb > 0 and 0 <= t.peak_memory_increase_mb <= t.peak_memory_mb
    model, payload = load_generator(gan_ckpt)
    parts = model.n_parameters()  # {"gen": ..., "disc": ...}
    assert r.parameters["total"] == parts["gen"] + parts["disc"] == sum(p.numel() for p in model.parameters())
    assert r.parameters["used_in_sampling"] == parts["gen"]  # sampling never reads the critic
    assert r.objects["particles_per_jet"] == 30
    f = r.flops
    assert f["batch"] == 50 and f["per_object"] == f["total"] / 50 > 0 and set(f["by_op"]) == {"aten.addmm"}
    assert r.checkpoint_md5 == payload["checkpoint_md5"]
    prov = r.provenance
    assert prov["torch"] == torch.__version__ and prov["machine"]["device"] == "cpu"
    assert {"load_1min", "cpu_count"} <= set(prov["load_before"]) and prov["pcbench_version"]


def test_the_cost_record_round_trips_through_strict_json(gan_record, tmp_path):
    path = gan_record.write(tmp_path / "c.json")
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    back = CostRecord.read(path)
    assert back == gan_record and back.to_json() == text
    assert back.time_per_object_s() == min(t.ms_per_object for t in back.timings) / 1e3
    assert back.timing(batch=1).batch == 1
    with pytest.raises(UsageError, match="no timing for batch 7"):
        back.timing(batch=7)


def test_the_same_seed_samples_the_same_objects(gan_ckpt, gan_record):
    model, payload = load_generator(gan_ckpt)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # as the record's cells: another thread count may round differently
    try:
        a, b = (sample_objects(model, payload, 50, seed=4) for _ in range(2))
        other = sample_objects(model, payload, 50, seed=5)
    finally:
        torch.set_num_threads(saved)
    assert np.array_equal(a.particle_features, b.particle_features) and objects_md5(a) == objects_md5(b)
    assert objects_md5(other) != objects_md5(a)
    assert gan_record.timing(batch=50).samples_md5 == objects_md5(a)  # the record names what was timed
    again = measure_cost(gan_ckpt, batches=(50,), threads=(1,), repeats=1, warmup=0, seed=4)
    assert again.timings[0].samples_md5 == objects_md5(a) and again.timings[0].ms_per_object_std is None


def test_thread_settings_are_restored(gan_ckpt):
    saved = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        r = measure_cost(gan_ckpt, batches=(4,), threads=(1, 2), repeats=1, warmup=0)
        assert torch.get_num_threads() == 3 and r.provenance["threads"]["torch_default"] == 3
        assert [t.threads for t in r.timings] == [1, 2]
    finally:
        torch.set_num_threads(saved)


def test_the_shower_baseline_costs_no_flops_and_no_parameters(tmp_path):
    d = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 5, 16)
    data = ShowerPointSet(d["points"], d["points"][..., 3] > 0, d["incident_energy"])
    ckpt = train("shower-baseline", model_config("shower-baseline", "small"), data,
                 TrainOptions(out_dir=tmp_path, progress=False))
    r = measure_cost(ckpt, batches=(4,), threads=(1,), repeats=2, warmup=1)
    assert r.kind == "showers" and r.objects["geometry"] == "ild-ecal" and r.objects["output"] == "points"
    assert r.flops["total"] == 0 and r.parameters["total"] == 0 and r.parameters["buffer_elements"] > 0
    lo, hi = r.objects["incident_energy_mev"]  # drawn as `pcbench sample` draws them: in the recorded range
    low, high = load_generator(ckpt)[1]["provenance"].get("energy_range_mev", (10_000.0, 90_000.0))
    assert low <= lo <= hi <= high
    assert r.timings[0].ms_per_object > 0 and r.timings[0].repeatable


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory("cpu") as mem:
        a = np.ones(25_000_000)  # 200 MB, touched
        a += 1
        del a
    if mem.method == "unavailable":
        pytest.skip("no way to read the resident set size here")
    assert mem.increase_mb > 150


def test_bad_arguments_are_usage_errors(gan_ckpt):
    with pytest.raises(UsageError, match="--batch 0"):
        measure_cost(gan_ckpt, batches=(0,))
    with pytest.raises(UsageError, match="--repeats 0"):
        measure_cost(gan_ckpt, repeats=0)


# ---- the command line ---------------------------------------------------------------------

def test_cli_time_prints_the_table_and_writes_the_record_beside_the_checkpoint(gan_ckpt):
    res = CliRunner().invoke(cli, ["time", str(gan_ckpt), "--batch", "1,8", "--threads", "1", "--repeats", "2"])
    assert res.exit_code == 0, res.output
    out = gan_ckpt.with_name(f"{gan_ckpt.stem}.cost.json")
    r = CostRecord.read(out)
    assert [(t.batch, t.threads) for t in r.timings] == [(1, 1), (8, 1)] and r.repeats == 2
    text = " ".join(res.output.split())
    for needle in ("ms per jet", "[MB]", f"parameters: {r.parameters['total']:,}", "FLOPs per jet:",
                   "N = 30 particle slots", f"wrote {out}"):
        assert needle in text, needle


@pytest.mark.parametrize("args, code, needles", [
    (["--batch", "1,x"], 2, ["--batch '1,x': expected positive integers separated by commas"]),
    (["--batch", "0"], 2, ["--batch '0'"]),
    (["--threads", "two"], 2, ["--threads 'two'"]),
    (["--device", "gpu"], 2, ["--device 'gpu': expected cpu, cuda or cuda:N"]),
    (["--repeats", "0"], 2, ["--repeats"]),
])
def test_cli_time_bad_options_are_one_line(gan_ckpt, tmp_path, args, code, needles):
    res = CliRunner().invoke(cli, ["time", str(gan_ckpt), "--out", str(tmp_path / "c.json"), *args])
    assert_one_line_error(res, code, *needles)
    assert not (tmp_path / "c.json").exists()


def test_cli_time_on_cuda_without_cuda_is_one_line(gan_ckpt, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = CliRunner().invoke(cli, ["time", str(gan_ckpt), "--device", "cuda", "--out", str(tmp_path / "c.json")])
    assert_one_line_error(res, 2, "--device cuda: CUDA is not available here")


def test_cli_time_missing_or_unreadable_checkpoint_is_one_line(tmp_path):
    res = CliRunner().invoke(cli, ["time", str(tmp_path / "nope.pt")])
    assert_one_line_error(res, 2, "does not exist")
    notes = tmp_path / "notes.pt"
    notes.write_bytes(b"not a checkpoint")
    res = CliRunner().invoke(cli, ["time", str(notes)])
    assert_one_line_error(res, 1, "not a readable torch checkpoint")
    res = CliRunner().invoke(cli, ["time", str(notes), "--out", str(tmp_path / "missing" / "c.json")])
    assert_one_line_error(res, 2, "--out", "does not exist")
